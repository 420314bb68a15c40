"""Does a label-free rule find the darker faces when it drives training? Candidate rules in the loop.

    python benchmarks/rule_in_training.py --kl-weight 0.0005 --rules max "product, 3 PCs, alpha 1e-2" --seeds 0 1 2
    python benchmarks/rule_in_training.py --resume ...       # the same arguments: continue an interrupted run

``rule_search.py`` scores rules on the latent means of a DB-VAE trained with uniform sampling; a rule in the loop
changes what the encoder sees, and so the latent space it is then applied to. This trains the DB-VAE at the
profile's scale with each candidate (by its name in ``rule_search.candidates()``) as the resampling rule and
records, per epoch, the expected darker share of the drawn faces and the ESS (the attribute is read here to
measure, never by the rule), then the detector's per-group recall and gap at threshold 0.5 and at the matched
FPR. Writes ``benchmarks/results/<name>.{md,json}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from face_focus import focused_loss  # noqa: E402
from latent_search import detector_view, finish, header, latent_criteria, resumed, save_checkpoint  # noqa: E402
from rule_search import candidates  # noqa: E402

from lab_utils.data import benchmark  # noqa: E402
from lab_utils.core.profiles import get_profile  # noqa: E402
from lab_utils.training import trainers  # noqa: E402
from lab_utils.training.config import TrainingConfig  # noqa: E402
from lab_utils.evaluation.sampling import resampling_diagnostics  # noqa: E402
from lab_utils.training.debiasing import DBVAE, ResamplingOptions  # noqa: E402
from lab_utils.training.variants import LAB_VARIANTS, train_variant  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


UNIFORM = "uniform (no resampling)"
CNN = "CNN (baseline)"
CONTROLS = (UNIFORM, CNN)


def run(rule_label: str, kl: float, seed: int, profile, focus: str = "whole", every: int = 1) -> dict[str, Any]:
    train, test = benchmark.load_benchmark(benchmark.config_from_profile(profile, seed=seed), progress=False)
    darker = np.asarray(train.attributes["darker"])[train.face_idx] == 1
    if rule_label == CNN:  # the detector the DB-VAE is compared with, on the same data and seed
        t0 = time.perf_counter()
        model, _ = train_variant(LAB_VARIANTS["cnn"], train, profile, seed=seed, verbose=0)
        return {"rule": rule_label, "focus": "-", "kl_weight": 0.0, "seed": seed,
                "train_seconds": time.perf_counter() - t0, "per_epoch": [], "base_rate": float(darker.mean()),
                "detector": detector_view(model, test)}
    rule = None if rule_label == UNIFORM else candidates()[rule_label]

    def in_loop(mu: np.ndarray, bins: int, alpha: float) -> np.ndarray:  # the rule interface; options unused
        return rule(mu)

    loss_fn = None if focus == "whole" else focused_loss(float(focus.removeprefix("centre")))
    model = DBVAE(latent_dim=profile.latent_dim, kl_weight=kl, seed=seed, loss_fn=loss_fn)
    t0 = time.perf_counter()
    _, log = trainers.train_dbvae(model, train, epochs=profile.dbvae_epochs, resample=rule is not None,
                                  config=TrainingConfig.for_profile(
                                      profile, resampling=ResamplingOptions(rule=in_loop, every=every)),
                                  seed=seed, verbose=0)
    seconds = time.perf_counter() - t0
    epochs, weighted = [], False
    for e in log:  # an epoch that keeps the weights of an earlier recompute reports their ESS too
        weighted = weighted or e["recomputed"]
        probs = np.asarray(e["sampling_probs"])
        epochs.append({"epoch": e["epoch"], "darker_share": float(probs[darker].sum()),
                       "ess_fraction": resampling_diagnostics(probs)["ess_fraction"] if weighted else None})
    return {"rule": rule_label, "focus": focus, "every": every, "kl_weight": kl, "seed": seed,
            "train_seconds": seconds,
            "per_epoch": epochs, "latent": latent_criteria(model, test, seed),
            "base_rate": float(darker.mean()), "detector": detector_view(model, test)}


def markdown(runs: list[dict], meta: dict) -> str:
    lines = header("Label-free rules in the training loop", meta) + [
             "Per run: the expected darker share of the faces drawn in the last epoch (%) and that epoch's ESS "
             "(% of faces), then the DB-VAE's lighter - darker recall gap at threshold 0.5 and at the matched FPR "
             "(points) and its FPR; where recorded, the latent criteria of the trained DB-VAE on the test faces "
             "(active units, distinctness of reconstructions, probe AUC; latent_search.py).", "",
             "| rule | reconstruction | KL weight | seed | base % | darker drawn % | ESS % | gap | gap @ FPR | FPR "
             "| active | distinct | probe AUC |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        last, d = (r["per_epoch"] or [{"darker_share": float("nan"), "ess_fraction": None}])[-1], r["detector"]
        ess = "-" if last["ess_fraction"] is None else f"{100 * last['ess_fraction']:.0f}"
        drawn = f"{100 * last['darker_share']:.1f}" if r["per_epoch"] else "-"
        lines.append(f"| {r['rule']} | {r.get('focus', 'whole')} | {r['kl_weight']:g} | {r['seed']} | "
                     f"{100 * r['base_rate']:.1f} | "
                     f"{drawn} | {ess} | {100 * d['gap']:+.1f} | {100 * d['gap_at_fpr']:+.1f} | "
                     f"{100 * d['fpr']:.2f}% | " + (
                         "{active_units} | {distinct_ratio:.2f} | {probe_auc:.3f} |".format(**r["latent"])
                         if "latent" in r else "| | |"))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--kl-weight", type=float, default=5e-4)
    parser.add_argument("--rules", nargs="+", required=True,
                        help=f"names in rule_search.candidates(), or the controls {CONTROLS}")
    parser.add_argument("--focus", default="whole", help="the reconstruction: 'whole' or 'centreS' (face_focus.py)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recompute-every", type=int, default=1,
                        help="epochs between recomputes from epoch 1 (more than the epochs left: computed once)")
    parser.add_argument("--name", default="rule_in_training")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    unknown = [r for r in args.rules if r not in candidates() and r not in CONTROLS]
    if unknown:
        parser.error(f"unknown rules {unknown}; choose from {sorted(candidates())}")
    profile = get_profile(args.profile)
    checkpoint = RESULTS / f"{args.name}.partial.json"
    identity = {k: getattr(args, k) for k in ("profile", "kl_weight", "rules", "seeds", "focus", "recompute_every")}
    runs, minutes_before = resumed(checkpoint, identity, args.resume, parser)
    done = {(r["rule"], r["seed"]) for r in runs}
    start = time.perf_counter()
    for seed in args.seeds:
        for rule in args.rules:
            if (rule, seed) in done:
                continue
            runs.append(run(rule, args.kl_weight, seed, profile, args.focus, args.recompute_every))
            save_checkpoint(checkpoint, identity, runs, minutes_before + (time.perf_counter() - start) / 60)
            r = runs[-1]
            drawn = f"{100 * r['per_epoch'][-1]['darker_share']:.1f}%" if r["per_epoch"] else "-"
            latent = r.get("latent", {})
            print(f"{rule} seed {seed}: darker drawn {drawn}, gap {100 * r['detector']['gap']:+.1f} @FPR "
                  f"{100 * r['detector']['gap_at_fpr']:+.1f} FPR {100 * r['detector']['fpr']:.2f}%, active "
                  f"{latent.get('active_units')}, distinct {latent.get('distinct_ratio', float('nan')):.2f}, probe "
                  f"{latent.get('probe_auc', float('nan')):.3f} ({r['train_seconds']:.0f} s)", flush=True)
    return finish("rule_in_training.py", argv, profile, args.name, runs,
                  minutes_before + (time.perf_counter() - start) / 60, markdown, checkpoint)


if __name__ == "__main__":
    sys.exit(main())
