"""Why DB-VAE's resampling does or does not find the darker faces: a look inside the latent space it resamples.

    python benchmarks/latent_diagnostics.py               # cpu profile, seeds 0-2, KL weights 5e-4 and 5e-2
    python benchmarks/latent_diagnostics.py --seeds 1 --kl-weights 5e-4 --epochs 4

For each seed and KL weight this trains the DB-VAE with uniform sampling for ``--epochs`` epochs (default: twice
the profile's) and, after every epoch, encodes all training faces: the latent means are what a resampling
recompute would see. It then measures, reading the skin-tone attribute *for this analysis only*:

1. whether the latent space encodes skin tone: the labs' one probe protocol
   (``lab_utils.evaluation.probes.cross_validated_probe``: a class-balanced logistic probe for darker vs. lighter
   on the latent means, scored on held-out folds) and the best single latent dimension's AUC;
2. what each combination rule and alpha would do: the expected darker share of drawn faces (sum of the sampling
   probabilities of darker faces) and the effective sample size (ESS) of the weights;
3. the best a per-dimension histogram could do: one histogram along the probe's *supervised* tone axis (its
   out-of-fold logits);
4. who gets the largest weights: darker, hat, glasses and extreme-exposure shares among the top 1% of faces;
5. whether darker faces are rare along any one dimension or only jointly: their per-dimension spread relative
   to all faces, and the darker share among each darker face's 10 nearest neighbours.

Writes ``benchmarks/results/latent_diagnostics.{md,json}``. Nothing here feeds back into training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from lab_utils.data import benchmark
from lab_utils.evaluation import metrics, probes, threshold_free
from lab_utils.evaluation.intervals import methods_record
from lab_utils.core.files import write_text_atomic
from lab_utils.core.env import machine_summary
from lab_utils.core.profiles import get_profile
from lab_utils.training import trainers
from lab_utils.training.variants import Variant, train_variant
from lab_utils.evaluation.sampling import resampling_diagnostics
from lab_utils.training.debiasing import histogram_weights

RESULTS = Path(__file__).resolve().parent / "results"
ALPHAS = (1e-3, 1e-2, 1e-1, 1.0)
RULES = ("product", "max")
TOP_SHARE = 0.01
NEIGHBOURS = 10


class LatentSnapshots(keras.callbacks.Callback):
    """Latent means and log-variances of every training face after each epoch (``face_idx`` order)."""

    def __init__(self, images: np.ndarray, batch_size: int = 500) -> None:
        super().__init__()
        self.images, self.batch_size = images, batch_size
        self.mu: list[np.ndarray] = []
        self.logvar: list[np.ndarray] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        mus, logvars = [], []
        for start in range(0, len(self.images), self.batch_size):
            mu, logvar = self.model.encode(self.images[start:start + self.batch_size].astype(np.float32) / 255.0)
            mus.append(keras.ops.convert_to_numpy(mu))
            logvars.append(keras.ops.convert_to_numpy(logvar))
        self.mu.append(np.concatenate(mus))
        self.logvar.append(np.concatenate(logvars))


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Rank AUC of ``score`` for ``positive``, folded to >= 0.5 (a dimension may encode tone with either sign)."""
    u = threshold_free.rank_auc(score[positive], score[~positive])
    return max(u, 1.0 - u)


def neighbour_darker_share(mu: np.ndarray, darker: np.ndarray, k: int = NEIGHBOURS) -> float:
    """Mean darker share among the k nearest neighbours (standardised latent means) of the darker faces."""
    z = (mu - mu.mean(0)) / np.maximum(mu.std(0), 1e-12)
    queries = np.flatnonzero(darker)
    sq = (z ** 2).sum(1)
    d2 = sq[queries, None] - 2.0 * z[queries] @ z.T + sq[None]
    d2[np.arange(len(queries)), queries] = np.inf
    nearest = np.argpartition(d2, k, axis=1)[:, :k]
    return float(darker[nearest].mean())


def analyse(mu: np.ndarray, logvar: np.ndarray, attrs: dict[str, np.ndarray]) -> dict[str, Any]:
    darker = attrs["darker"] == 1
    probe = probes.out_of_fold_logits(mu, darker)
    out: dict[str, Any] = {
        "latent_std_median": float(np.median(mu.std(0))),
        "active_dims": int((mu.var(0) > np.exp(logvar).mean(0)).sum()),
        "probe_auc": probes.cross_validated_probe(mu, darker).auc,
        "best_dim_auc": max(auc(mu[:, j], darker) for j in range(mu.shape[1])),
        "darker_spread_ratio": float(np.median(mu[darker].std(0) / np.maximum(mu.std(0), 1e-12))),
        "neighbour_darker_share": neighbour_darker_share(mu, darker),
        "rules": {},
    }
    extreme_exposure = np.abs(attrs["exposure"] - np.median(attrs["exposure"])) > 2 * benchmark.DIFFICULTY[
        "exposure_ev_jitter"]
    flags = {"darker": darker, "hat": attrs["hat"] == 1, "glasses": attrs["glasses"] == 1,
             "extreme_exposure": extreme_exposure}
    out["base_rates"] = {k: float(v.mean()) for k, v in flags.items()}
    n_top = max(1, int(round(TOP_SHARE * len(mu))))
    spaces = {"product": mu, "max": mu, "probe_axis": probe[:, None]}
    for name, space in spaces.items():
        rule = "product" if name == "probe_axis" else name
        for alpha in ALPHAS:
            p = histogram_weights(space, alpha=alpha, rule=rule)
            top = np.argsort(p)[-n_top:]
            out["rules"][f"{name}@{alpha:g}"] = {
                "darker_share": float(p[darker].sum()),
                "ess_fraction": resampling_diagnostics(p)["ess_fraction"],
                "top1pct": {k: float(v[top].mean()) for k, v in flags.items()},
            }
    return out


def run(seed: int, kl_weight: float, epochs: int, profile) -> dict[str, Any]:
    train, test = benchmark.load_benchmark(benchmark.config_from_profile(profile, seed=seed), progress=False)
    snapshots = LatentSnapshots(train.images[train.face_idx])
    variant = Variant(f"dbvae_uniform_kl{kl_weight:g}", resample=False, kl_weight=kl_weight)
    model, record = train_variant(variant, train, profile, seed=seed, epochs=epochs, callbacks=[snapshots],
                                  verbose=0)
    attrs = {k: np.asarray(v)[train.face_idx] for k, v in train.attributes.items()}
    per_epoch = [analyse(mu, lv, attrs) for mu, lv in zip(snapshots.mu, snapshots.logvar)]
    evaluation = metrics.evaluate_detector(trainers.predict_face_probs(model, test), test.labels, test.group,
                                           n_boot=200, seed=seed)
    return {"seed": seed, "kl_weight": kl_weight, "epochs": epochs, "train_seconds": record["train_seconds"],
            "per_epoch": per_epoch,
            "final_recall": {g: e.value for g, e in evaluation.recall.items()},
            "final_gap": evaluation.lighter_darker_gap.value, "final_fpr": evaluation.fpr.value}


def _ms(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    v = np.asarray(values, dtype=np.float64) * scale
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def markdown(runs: list[dict], meta: dict) -> str:
    kls = sorted({r["kl_weight"] for r in runs})
    epochs = runs[0]["epochs"]
    shown = sorted({meta["profile_epochs"], epochs})
    lines = [
        "# Latent-space diagnostics: can histogram resampling find the darker faces?", "",
        f"Command: `{meta['command']}`  ",
        f"Profile `{meta['profile']}`, seeds {meta['seeds']}, DB-VAE trained with uniform sampling for {epochs} epochs "
        f"per seed and KL weight; machine: {meta['machine']}; total {meta['total_minutes']:.1f} min.", "",
        "Mean ± std over seeds. The skin-tone attribute is read here for analysis only; no model is trained on it.",
        "", "## 1. Is skin tone in the latent space, and where?", "",
        "| KL weight | epoch | latent std (median dim) | active dims | probe AUC (darker) | best single-dim AUC "
        "| darker spread / all (median dim) | darker share of darker faces' 10 NN |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kl in kls:
        rs = [r for r in runs if r["kl_weight"] == kl]
        for e in shown:
            ep = [r["per_epoch"][e - 1] for r in rs]
            lines.append(f"| {kl:g} | {e} | {_ms([x['latent_std_median'] for x in ep], digits=3)} "
                         f"| {_ms([x['active_dims'] for x in ep], digits=1)} | {_ms([x['probe_auc'] for x in ep])} "
                         f"| {_ms([x['best_dim_auc'] for x in ep])} | {_ms([x['darker_spread_ratio'] for x in ep])} "
                         f"| {_ms([x['neighbour_darker_share'] for x in ep], 100, 0)}% |")
    base = runs[0]["per_epoch"][0]["base_rates"]
    lines += ["", "'Active dims': latent dimensions whose means vary across faces more than the encoder's own "
              "posterior variance. The 10-NN column is the darker share among the nearest neighbours (standardised "
              f"latent means) of darker faces; the base rate is {100 * base['darker']:.0f}%.", "",
              "## 2. What each rule and alpha would draw", "",
              f"Expected darker share of drawn faces (%) / ESS (% of faces), from the latent means at epoch "
              f"{meta['profile_epochs']} (the profile's training length). 'probe axis' is one histogram along the "
              "supervised tone direction of the probe: the best a single well-placed dimension could do.", "",
              "| KL weight | weights | " + " | ".join(f"alpha {a:g}" for a in ALPHAS) + " |",
              "|---:|---|" + "---:|" * len(ALPHAS)]
    e = meta["profile_epochs"] - 1
    for kl in kls:
        rs = [r for r in runs if r["kl_weight"] == kl]
        for name in ("product", "max", "probe_axis"):
            cells = []
            for a in ALPHAS:
                vals = [r["per_epoch"][e]["rules"][f"{name}@{a:g}"] for r in rs]
                cells.append(f"{_ms([v['darker_share'] for v in vals], 100, 0)} / "
                             f"{_ms([v['ess_fraction'] for v in vals], 100, 0)}")
            label = {"product": "product, all dims", "max": "max, all dims", "probe_axis": "probe axis (supervised)"}
            lines.append(f"| {kl:g} | {label[name]} | " + " | ".join(cells) + " |")
    lines += ["", "## 3. Who gets the largest weights", "",
              f"Share (%) of each attribute among the top {TOP_SHARE:.0%} of faces by weight, epoch "
              f"{meta['profile_epochs']}. Base rates: " + ", ".join(f"{k.replace('_', ' ')} {100 * v:.1f}%"
                                                                    for k, v in base.items()) + ".", "",
              "| KL weight | rule, alpha | " + " | ".join(k.replace("_", " ") for k in base) + " |",
              "|---:|---|" + "---:|" * len(base)]
    for kl in kls:
        rs = [r for r in runs if r["kl_weight"] == kl]
        for key in ("product@0.001", "product@1", "max@0.001"):
            vals = [r["per_epoch"][e]["rules"][key]["top1pct"] for r in rs]
            lines.append(f"| {kl:g} | {key.replace('@', ', alpha ')} | "
                         + " | ".join(_ms([v[k] for v in vals], 100, 0) for k in base) + " |")
    lines += ["", f"## 4. The uniform-sampling DB-VAE after {epochs} epochs (EMA weights, test split)", "",
              "| KL weight | LF | LM | DF | DM | lighter - darker (pts) | FPR (%) | train s |", "|---:|" + "---:|" * 7]
    for kl in kls:
        rs = [r for r in runs if r["kl_weight"] == kl]
        lines.append(f"| {kl:g} | " + " | ".join(_ms([r['final_recall'][g] for r in rs], 100, 1)
                                                   for g in ("LF", "LM", "DF", "DM"))
                     + f" | {_ms([r['final_gap'] for r in rs], 100, 1)} | {_ms([r['final_fpr'] for r in rs], 100, 2)}"
                     f" | {_ms([r['train_seconds'] for r in rs], digits=0)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--kl-weights", type=float, nargs="+", default=[5e-4, 5e-2])
    parser.add_argument("--epochs", type=int, default=None, help="default: twice the profile's DB-VAE epochs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 (the tables report the spread across seeds)")
    profile = get_profile(args.profile)
    epochs = args.epochs or 2 * profile.dbvae_epochs
    if epochs < profile.dbvae_epochs:
        parser.error(f"--epochs must be at least the profile's {profile.dbvae_epochs} DB-VAE epochs")

    start = time.perf_counter()
    runs = []
    for seed in range(args.seeds):
        for kl in args.kl_weights:
            t0 = time.perf_counter()
            runs.append(run(seed, kl, epochs, profile))
            last = runs[-1]["per_epoch"][-1]
            print(f"seed {seed} kl {kl:g}: probe AUC {last['probe_auc']:.3f}, best dim {last['best_dim_auc']:.3f}, "
                  f"gap {100 * runs[-1]['final_gap']:+.1f} pts ({time.perf_counter() - t0:.0f} s)", flush=True)
    meta = {
        "command": "python benchmarks/latent_diagnostics.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "profile": profile.name, "profile_epochs": profile.dbvae_epochs, "seeds": list(range(args.seeds)),
        "intervals": methods_record(),  # mean and std over seeds; no interval
        "probe_protocol": "lab_utils.evaluation.probes.cross_validated_probe (5 stratified folds)",
        "machine": machine_summary(),
        "total_minutes": (time.perf_counter() - start) / 60,
    }
    table = markdown(runs, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "latent_diagnostics.md", table)
    write_text_atomic(args.out / "latent_diagnostics.json", json.dumps({"meta": meta, "runs": runs}, indent=1))
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
