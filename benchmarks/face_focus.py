"""Does a face-centred reconstruction make skin tone a leading latent direction? Research for issue 20.

    python benchmarks/face_focus.py --configs whole:0.0005 centre12:0.0005 whole:0.02 --seeds 0

A config is ``FOCUS:KL``: ``whole`` is the labs' reconstruction (mean L1 over every pixel); ``centreS`` weights each
pixel's L1 error by a Gaussian of S pixels centred on the image (normalised to mean 1, so the KL weight keeps its
meaning). The DB-VAE trains with uniform sampling at the profile's scale; this records the latent criteria of
``latent_search.py`` on the test faces, the detector's gap, the |skin-tone| correlation of the leading principal
directions of the training faces' latent means, and what label-free rules on those means would draw (expected darker
share, ESS). The attributes are read here to measure, never to train. Writes ``benchmarks/results/<name>.{md,json}``
and caches the means in ``outputs/latent_search/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from keras import ops

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from latent_search import (cache_means, detector_view, finish, header, latent_criteria, resumed,  # noqa: E402
                           save_checkpoint)
from rule_search import candidates, leading_components  # noqa: E402

from lab_utils.data import benchmark  # noqa: E402
from lab_utils.nn.losses import centre_weights, classification_loss, kl_divergence  # noqa: E402
from lab_utils.core.env import output_dir  # noqa: E402
from lab_utils.core.profiles import get_profile  # noqa: E402
from lab_utils.training import trainers  # noqa: E402
from lab_utils.training.config import TrainingConfig  # noqa: E402
from lab_utils.evaluation.sampling import resampling_diagnostics  # noqa: E402
from lab_utils.training.debiasing import DBVAE  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RULES = ("max, all dims", "max, 1 PCs", "product, 1 PCs, alpha 1e-2", "kNN, 1 PCs, power 1", "max, 2 PCs",
         "max, 3 PCs", "product, 3 PCs, alpha 1e-2", "kNN, 3 PCs, power 1")


def focused_loss(sigma: float):
    """The DB-VAE loss with ``losses.centre_weights(sigma)`` on the L1 error (``recon="l1_centre"`` at 12 px)."""
    w = centre_weights(sigma)

    def centre_weighted_dbvae_loss(x, x_hat, y, logit, mu, logvar, kl_weight, recon):
        y = ops.reshape(ops.cast(y, "float32"), (-1,))
        err = ops.abs(ops.cast(x, "float32") - ops.cast(x_hat, "float32")) * w
        rec = ops.mean(ops.reshape(err, (ops.shape(err)[0], -1)), axis=-1)
        return classification_loss(y, logit) + y * (rec + kl_weight * kl_divergence(mu, logvar))

    return centre_weighted_dbvae_loss


def run(config: str, seed: int, profile, cache: Path) -> dict[str, Any]:
    focus, kl = config.split(":")
    kl = float(kl)
    train, test = benchmark.load_benchmark(benchmark.config_from_profile(profile, seed=seed), progress=False)
    loss_fn = None if focus == "whole" else focused_loss(float(focus.removeprefix("centre")))
    model = DBVAE(latent_dim=profile.latent_dim, kl_weight=kl, seed=seed, loss_fn=loss_fn)
    t0 = time.perf_counter()
    trainers.train_dbvae(model, train, epochs=profile.dbvae_epochs, resample=False,
                         config=TrainingConfig.for_profile(profile), seed=seed, verbose=0)
    out = {"config": config, "seed": seed, "train_seconds": time.perf_counter() - t0,
           **latent_criteria(model, test, seed), "detector": detector_view(model, test)}
    mu, attrs = cache_means(model, train, cache / f"dbvae_{focus}_kl{kl:g}_seed{seed}.npz")
    tone, darker = attrs["skin_tone"].astype(np.float64), attrs["darker"] == 1
    pcs = leading_components(mu, 6)
    out["pc_tone_corr"] = [float(abs(np.corrcoef(pcs[:, j], tone)[0, 1])) for j in range(6)]
    out["rules"] = {}
    for label in RULES:
        p = candidates()[label](mu)
        out["rules"][label] = {"darker_share": float(p[darker].sum()),
                               "ess_fraction": resampling_diagnostics(p)["ess_fraction"]}
    return out


def markdown(runs: list[dict], meta: dict) -> str:
    lines = header("A face-centred reconstruction", meta) + [
             "Per run (DB-VAE, uniform sampling), on the test faces: active units, distinctness, probe AUC, best "
             "|tone r| of one latent mean; the gap at 0.5 / at the matched FPR (points); the |tone r| of the first "
             "three principal directions of the training faces' means.", "",
             "| config | seed | active | distinct | probe AUC | best |r| | PC1-3 |r| | gap | gap @ FPR | FPR | s |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in runs:
        d = r["detector"]
        pcs = " / ".join(f"{c:.2f}" for c in r["pc_tone_corr"][:3])
        lines.append(f"| {r['config']} | {r['seed']} | {r['active_units']} | {r['distinct_ratio']:.2f} | "
                     f"{r['probe_auc']:.3f} | {r['best_tone_corr']:.2f} | {pcs} | {100 * d['gap']:+.1f} | "
                     f"{100 * d['gap_at_fpr']:+.1f} | {100 * d['fpr']:.2f}% | {r['train_seconds']:.0f} |")
    lines += ["", "What each rule would draw from the training faces' means: expected darker share % / ESS % "
              "(base rate 5%).", "", "| rule | " + " | ".join(f"{r['config']} s{r['seed']}" for r in runs) + " |",
              "|---|" + "---:|" * len(runs)]
    for label in RULES:
        cells = [f"{100 * r['rules'][label]['darker_share']:.1f} / {100 * r['rules'][label]['ess_fraction']:.0f}"
                 for r in runs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--configs", nargs="+", default=["whole:0.0005", "centre12:0.0005"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--name", default="face_focus")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    checkpoint = RESULTS / f"{args.name}.partial.json"
    identity = {k: getattr(args, k) for k in ("profile", "configs", "seeds")}
    runs, minutes_before = resumed(checkpoint, identity, args.resume, parser)
    done = {(r["config"], r["seed"]) for r in runs}
    start = time.perf_counter()
    for seed in args.seeds:
        for config in args.configs:
            if (config, seed) in done:
                continue
            runs.append(run(config, seed, profile, output_dir() / "latent_search"))
            save_checkpoint(checkpoint, identity, runs, minutes_before + (time.perf_counter() - start) / 60)
            r = runs[-1]
            print(f"{config} seed {seed}: {r['active_units']} active, distinct {r['distinct_ratio']:.2f}, probe "
                  f"{r['probe_auc']:.3f}, PC tone r {np.round(r['pc_tone_corr'][:3], 2)}, gap "
                  f"{100 * r['detector']['gap']:+.1f}; " + "; ".join(
                      f"{k}: {100 * v['darker_share']:.1f}%/{100 * v['ess_fraction']:.0f}%"
                      for k, v in r["rules"].items()), flush=True)
    return finish("face_focus.py", argv, profile, args.name, runs,
                  minutes_before + (time.perf_counter() - start) / 60, markdown, checkpoint)


if __name__ == "__main__":
    sys.exit(main())
