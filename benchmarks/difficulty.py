"""Frozen-difficulty check of the embedded benchmark: is the bias real, and is it caused by the data skew?

    python benchmarks/difficulty.py                  # cpu scale, seeds 0..4, 3 epochs; writes the results
    python benchmarks/difficulty.py --quick          # small data and 2 seeds, to explore; writes nothing

Per seed, trains the lab CNN on the BIASED split (5% darker faces) and on the BALANCED split (50% darker) and
measures per-group recall at threshold 0.5 on the balanced test split, plus the false-positive rate on test
non-faces, with EMA weights (Adam use_ema, momentum 0.995). Criterion: the biased lighter-minus-darker recall gap
exceeds 3 standard errors over seeds, and the balanced gap is within noise (|mean| < 2 SE or < 2 points), i.e. the
gap comes from the training skew, not from darker faces being unlearnable. lab_utils.data.benchmark.DIFFICULTY is
frozen once this passes. Writes benchmarks/results/difficulty.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from lab_utils import GROUPS
from lab_utils.data import benchmark
from lab_utils.evaluation.intervals import methods_record
from lab_utils.core.files import write_text_atomic
from lab_utils.nn.models import build_cnn
from lab_utils.core.env import data_dir, machine_summary
from lab_utils.training import trainers
from lab_utils.training.config import TrainingConfig

RESULTS = Path(__file__).resolve().parent / "results"
CONDITIONS = {"biased": 0.05, "balanced": 0.5}
THRESHOLD = 0.5
QUICK_SIZES = dict(n_train_faces=4_000, n_train_nonfaces=4_000, n_test_per_group=150, n_test_nonfaces=600)
TIMED_IMAGES = 20_000
CONFIG = TrainingConfig()  # the labs' batch, learning rate and EMA


def ensure_ema_weights(model) -> float:
    """Largest change when the EMA is written into the model again: 0 means fit() had already done it."""
    before = [np.array(v) for v in model.trainable_variables]
    model.optimizer.finalize_variable_values(model.trainable_variables)
    return max(float(np.max(np.abs(np.array(v) - b))) for v, b in zip(model.trainable_variables, before))


def evaluate(probs: np.ndarray, test) -> dict:
    called = probs >= THRESHOLD
    recall = {g: float(called[test.group_idx(g)].mean()) for g in GROUPS}
    lighter = (recall["LF"] + recall["LM"]) / 2
    darker = (recall["DF"] + recall["DM"]) / 2
    return {"recall": recall, "gap": lighter - darker, "fpr": float(called[test.nonface_idx].mean())}


def run_condition(cfg: benchmark.BenchmarkConfig, epochs: int, cache_dir: Path) -> dict:
    train, test = benchmark.load_benchmark(cfg, cache_dir=cache_dir, progress=False)
    model = build_cnn()
    start = time.perf_counter()
    trainers.train_classifier(model, train, epochs=epochs, config=CONFIG, seed=cfg.seed, verbose=0)
    seconds = time.perf_counter() - start
    ema_change = ensure_ema_weights(model)
    result = evaluate(trainers.predict_face_probs(model, test, progress=False), test)
    train_darker = float(np.mean(train.attributes["darker"][train.face_idx] == 1))
    return result | {"train_seconds": seconds, "ema_change_after_fit": ema_change, "train_darker_share": train_darker}


def stats(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    std = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    return {"mean": float(v.mean()), "std": std, "se": std / math.sqrt(len(v)), "values": v.tolist()}


def summarise(runs: dict[str, list[dict]]) -> dict:
    out = {}
    for condition, results in runs.items():
        out[condition] = {"gap": stats([r["gap"] for r in results]), "fpr": stats([r["fpr"] for r in results])}
        out[condition] |= {g: stats([r["recall"][g] for r in results]) for g in GROUPS}
    return out


def criterion(summary: dict) -> dict:
    biased, balanced = summary["biased"]["gap"], summary["balanced"]["gap"]
    biased_ok = biased["mean"] > 3 * biased["se"]
    within_2se, within_2pts = abs(balanced["mean"]) < 2 * balanced["se"], abs(balanced["mean"]) < 0.02
    return {"biased_gap_above_3se": bool(biased_ok), "balanced_gap_below_2se": bool(within_2se),
            "balanced_gap_below_2_points": bool(within_2pts),
            "balanced_gap_within_noise": bool(within_2se or within_2pts),
            "passed": bool(biased_ok and (within_2se or within_2pts))}


def time_generator(cfg: benchmark.BenchmarkConfig) -> dict:
    """Wall time to render TIMED_IMAGES training images with the default worker count (no cache)."""
    sized = benchmark.BenchmarkConfig(seed=cfg.seed, n_train_faces=TIMED_IMAGES // 2,
                                      n_train_nonfaces=TIMED_IMAGES - TIMED_IMAGES // 2)
    start = time.perf_counter()
    benchmark.generate_split(sized, "train", progress=False)
    return {"images": TIMED_IMAGES, "seconds": time.perf_counter() - start, "n_jobs": min(2, os.cpu_count() or 1)}


def pct(s: dict) -> str:
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f} (SE {100 * s['se']:.1f})"


def markdown(report: dict) -> str:
    summary, crit = report["summary"], report["criterion"]
    lines = ["# Embedded benchmark: frozen-difficulty check", "",
             f"Command: `{report['command']}`  ", f"Machine: {report['machine']}  ",
             f"Generator version {report['generator_version']}, seeds {report['seeds']}, {report['epochs']} epochs, "
             f"batch {CONFIG.batch_size}, EMA momentum {CONFIG.ema_momentum}, threshold {THRESHOLD}; sizes {report['sizes']}.", "",
             "Training is multi-threaded on CPU and not bit-reproducible, so reruns differ by a few points per seed; "
             "the data are (same seed, same bytes).", "",
             "Recall and FPR in %, mean ± std over seeds (SE = std / sqrt(seeds)). "
             "Gap = mean(LF, LM) - mean(DF, DM) recall, in points.", "",
             "| condition | train darker share | LF | LM | DF | DM | lighter - darker gap | FPR |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for condition, fraction in CONDITIONS.items():
        s = summary[condition]
        lines.append(f"| {condition} | {fraction:.0%} | " + " | ".join(pct(s[g]) for g in GROUPS)
                     + f" | {pct(s['gap'])} | {pct(s['fpr'])} |")
    gen = report["generator_timing"]
    lines += ["", "| criterion | value | passed |", "|---|---|---|",
              f"| biased gap > 3 SE | {100 * summary['biased']['gap']['mean']:.1f} > "
              f"{300 * summary['biased']['gap']['se']:.1f} | {crit['biased_gap_above_3se']} |",
              f"| balanced gap < 2 SE | {abs(100 * summary['balanced']['gap']['mean']):.2f} vs "
              f"{200 * summary['balanced']['gap']['se']:.2f} | {crit['balanced_gap_below_2se']} |",
              f"| balanced gap < 2 points | {abs(100 * summary['balanced']['gap']['mean']):.2f} vs 2 | "
              f"{crit['balanced_gap_below_2_points']} |",
              f"| balanced gap within noise (either of the two) | | {crit['balanced_gap_within_noise']} |",
              f"| **overall** | | **{crit['passed']}** |", "",
              f"Generator: {gen['images']} images in {gen['seconds']:.1f} s with {gen['n_jobs']} processes "
              f"({gen['images'] / gen['seconds']:.0f} images/s; CPU shared with other jobs).  ",
              f"CNN training: {report['train_seconds_per_epoch']:.1f} s per epoch on average.  ",
              f"EMA written into the model by fit(): {report['ema_applied_by_fit']} "
              f"(largest change when re-applied: {report['max_ema_change_after_fit']:.2g}).", "",
              "Per-seed gaps (points): " + "; ".join(
                  f"{c}: " + ", ".join(f"{100 * v:.1f}" for v in summary[c]["gap"]["values"]) for c in CONDITIONS),
              "", "Frozen DIFFICULTY:", "", "| setting | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["difficulty"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds, 0..N-1 (default 5; quick 2)")
    parser.add_argument("--epochs", type=int, default=None, help="CNN epochs (default 3)")
    parser.add_argument("--quick", action="store_true", help="small data to explore; writes no results")
    parser.add_argument("--cache-dir", type=Path, default=None, help="benchmark cache (default: data/)")
    args = parser.parse_args(argv)
    n_seeds = args.seeds or (2 if args.quick else 5)
    epochs = args.epochs or 3
    if n_seeds < 2 or epochs < 1:
        parser.error("--seeds must be >= 2 (standard errors need two) and --epochs >= 1.")
    sizes = QUICK_SIZES if args.quick else {}
    cache_dir = args.cache_dir or data_dir()

    generator_timing = time_generator(benchmark.BenchmarkConfig())
    print(f"generator: {generator_timing['images']} images in {generator_timing['seconds']:.1f} s", flush=True)
    runs: dict[str, list[dict]] = {c: [] for c in CONDITIONS}
    for seed in range(n_seeds):
        for condition, fraction in CONDITIONS.items():
            cfg = benchmark.BenchmarkConfig(seed=seed, train_darker_fraction=fraction, **sizes)
            result = run_condition(cfg, epochs, cache_dir)
            runs[condition].append(result)
            print(f"seed {seed} {condition:8s} " + " ".join(f"{g}={100 * result['recall'][g]:5.1f}" for g in GROUPS)
                  + f" gap={100 * result['gap']:+5.1f} fpr={100 * result['fpr']:4.1f} "
                  f"({result['train_seconds']:.0f} s)", flush=True)

    summary = summarise(runs)
    all_runs = [r for results in runs.values() for r in results]
    max_change = max(r["ema_change_after_fit"] for r in all_runs)
    report = {
        "command": " ".join(["python benchmarks/difficulty.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine_summary(),
        "seeds": list(range(n_seeds)), "epochs": epochs,
        "sizes": {k: v for k, v in benchmark.BenchmarkConfig(**sizes).to_dict().items() if k != "seed"}
                 | {"train_darker_fraction": CONDITIONS},
        "generator_version": benchmark.GENERATOR_VERSION, "difficulty": dict(benchmark.DIFFICULTY),
        "generator_timing": generator_timing,
        "train_seconds_per_epoch": float(np.mean([r["train_seconds"] for r in all_runs]) / epochs),
        "ema_applied_by_fit": bool(max_change < 1e-6), "max_ema_change_after_fit": max_change,
        "intervals": methods_record(),  # mean, std and standard error over seeds; no interval
        "summary": summary, "criterion": criterion(summary), "runs": runs,
    }
    text = markdown(report)
    print(text)
    if args.quick:
        print("--quick: results not written.")
    else:
        write_text_atomic(RESULTS / "difficulty.json", json.dumps(report, indent=2) + "\n")
        write_text_atomic(RESULTS / "difficulty.md", text)
        print(f"wrote {RESULTS / 'difficulty.md'} and difficulty.json")
    return 0 if report["criterion"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
