"""What would the rule draw if the DB-VAE recomputed its weights once, after the first epoch? Scored offline.

    python benchmarks/first_recompute.py --seeds 0 1 2 3 4 5 6 7 --name first_recompute_seeds0to7

In training, the labs' rule's darker share swings from one recompute to the next (16 / 2 / 17% on seed 0,
``rule_in_training_centre12_seeds012.md``): faces drawn often in one epoch are encoded differently in the next. The
first recompute, after one uniform epoch, is the steadiest point. This trains the DB-VAE at its defaults and the
profile's scale until that recompute, takes the latent means the rule is handed there (the exact array, captured
through the rule interface), and scores variants of the labs' rule on them: expected darker share of the drawn faces
and ESS. With weights computed once, that is what every later epoch draws too. The attribute is read here to score,
never by a rule. Writes ``benchmarks/results/<name>.{md,json}``; the latent means are cached in
``outputs/first_recompute/``, so a rerun scores without training.
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

from latent_search import finish, header  # noqa: E402
from rule_search import score  # noqa: E402

from lab_utils.core.env import output_dir  # noqa: E402
from lab_utils.core.files import atomic_path  # noqa: E402
from lab_utils.core.profiles import get_profile  # noqa: E402
from lab_utils.data import benchmark  # noqa: E402
from lab_utils.training import trainers  # noqa: E402
from lab_utils.training.config import TrainingConfig  # noqa: E402
from lab_utils.training.debiasing import DBVAE, ResamplingOptions, principal_max_rule  # noqa: E402


class _Captured(Exception):
    """Raised by the capturing rule to end training at the first recompute."""


def candidates() -> dict[str, Any]:
    """The labs' rule and its neighbours: how many directions, how many bins, how much smoothing."""
    rules = {}
    for components in (2, 3):
        for bins in (5, 10, 20):
            for alpha in (1e-4, 3e-4, 1e-3, 1e-2):
                rules[f"principal_max, {components} PCs, {bins} bins, alpha {alpha:g}"] = (
                    lambda mu, c=components, b=bins, a=alpha: principal_max_rule(mu, b, a, c))
    return rules


def first_recompute_means(seed: int, profile, cache: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """The training faces' latent means at the first recompute (cached), their darker flags and training seconds."""
    path = cache / f"seed{seed}.npz"
    if path.is_file():
        data = np.load(path)
        return data["mu"], data["darker"], float(data["seconds"])
    train, _ = benchmark.load_benchmark(benchmark.config_from_profile(profile, seed=seed), progress=False)
    darker = np.asarray(train.attributes["darker"])[train.face_idx] == 1
    captured: dict[str, np.ndarray] = {}

    def capture(mu: np.ndarray, bins: int, alpha: float) -> np.ndarray:
        captured["mu"] = np.array(mu)
        raise _Captured

    model = DBVAE(latent_dim=profile.latent_dim, seed=seed)
    t0 = time.perf_counter()
    try:
        trainers.train_dbvae(model, train, epochs=profile.dbvae_epochs, seed=seed, verbose=0,
                             config=TrainingConfig.for_profile(profile, resampling=ResamplingOptions(rule=capture)))
    except _Captured:
        pass
    seconds = time.perf_counter() - t0
    if "mu" not in captured:
        raise RuntimeError(f"seed {seed}: training ended without a recompute; the profile has one epoch only?")
    with atomic_path(path, suffix=".npz") as tmp:  # a killed run leaves no half-written cache
        np.savez_compressed(tmp, mu=captured["mu"], darker=darker, seconds=seconds)
    return captured["mu"], darker, seconds


def markdown(runs: list[dict], meta: dict) -> str:
    names = list(runs[0]["rules"])
    seeds = [r["seed"] for r in runs]
    lines = header("The labs' rule at the first recompute", meta) + [
        "Expected darker share of the drawn faces (%) / ESS (% of faces) per seed, from the training faces' latent "
        "means at the first recompute (after one uniform epoch at the DB-VAE's defaults); then the smallest share over "
        "seeds and the seeds that reach 15% at an ESS of at least 10%. Base rate "
        + ", ".join(f"{100 * r['base_rate']:.1f}" for r in runs) + "%.", "",
        "| rule | " + " | ".join(f"seed {s}" for s in seeds) + " | min share | seeds at target |",
        "|---|" + "---:|" * (len(seeds) + 2)]
    for name in names:
        cells = [r["rules"][name] for r in runs]
        met = sum(c["darker_share"] >= 0.15 and c["ess_fraction"] >= 0.10 for c in cells)
        lines.append(f"| {name} | " + " | ".join(f"{100 * c['darker_share']:.1f} / {100 * c['ess_fraction']:.0f}"
                                                  for c in cells)
                     + f" | {100 * min(c['darker_share'] for c in cells):.1f} | {met} of {len(cells)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--name", default="first_recompute")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    cache = output_dir() / "first_recompute" / profile.name
    start = time.perf_counter()
    runs = []
    for seed in args.seeds:
        mu, darker, seconds = first_recompute_means(seed, profile, cache)
        runs.append({"seed": seed, "base_rate": float(darker.mean()), "train_seconds": seconds,
                     "rules": {name: score(rule(mu), darker) for name, rule in candidates().items()}})
        print(f"seed {seed}: " + ", ".join(f"{100 * v['darker_share']:.1f}%" for v in runs[-1]["rules"].values()),
              flush=True)
    return finish("first_recompute.py", argv, profile, args.name, runs, (time.perf_counter() - start) / 60,
                  markdown, cache / "unused.partial.json")


if __name__ == "__main__":
    sys.exit(main())
