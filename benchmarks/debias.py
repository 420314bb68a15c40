"""Multi-seed benchmark: what does debiasing do on the embedded benchmark, beyond seed-to-seed noise?

    python benchmarks/debias.py                       # cpu profile, 3 seeds, the default variants
    python benchmarks/debias.py --seeds 5 --variants cnn dbvae_uniform dbvae_product_a0.001

Trains and evaluates, per seed, the baseline CNN, the DB-VAE without resampling (the VAE loss alone), the DB-VAE
with adaptive resampling for several alpha and both combination rules, and a label-aware oracle that draws
darker-skinned faces at a fixed share (the upper bound the DB-VAE approximates without labels). Writes
benchmarks/results/debias.{md,json} and plots. The data's difficulty is frozen (benchmarks/results/difficulty.md);
this script never changes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from lab_utils import GROUPS, metrics, plots, synthetic, training
from lab_utils.config import get_profile
from lab_utils.experiments import Variant, resampling_summary, train_variant
from lab_utils.files import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"

VARIANTS: dict[str, Variant] = {v.name: v for v in [
    Variant("cnn", kind="cnn"),
    Variant("dbvae_uniform", resample=False),
    *[Variant(f"dbvae_product_a{a:g}", resample=True, rule="product", alpha=a) for a in (1e-3, 1.0)],
    *[Variant(f"dbvae_max_a{a:g}", resample=True, rule="max", alpha=a) for a in (1e-3, 1e-1)],
    Variant("oracle_dbvae_50pct", oracle_darker_share=0.5),
    # A stronger KL term (100x the lab's), where the latent means shrink and the max rule's weights move
    # further from uniform (see benchmarks/results/latent_diagnostics.md).
    Variant("dbvae_uniform_kl0.05", resample=False, kl_weight=0.05),
    *[Variant(f"dbvae_max_a{a:g}_kl0.05", resample=True, rule="max", alpha=a, kl_weight=0.05) for a in (1e-3, 1e-2)],
    Variant("oracle_dbvae_50pct_kl0.05", oracle_darker_share=0.5, kl_weight=0.05),
]}
DEFAULT_VARIANTS = ["cnn", "dbvae_uniform", "dbvae_product_a0.001", "dbvae_product_a1", "dbvae_max_a0.001",
                    "dbvae_max_a0.1", "oracle_dbvae_50pct"]
"""What the runner trains unless told otherwise: every model the issue asks for, in about 45 min on 2 cores."""


def run_one(variant: Variant, train, test, profile, seed: int) -> dict:
    model, record = train_variant(variant, train, profile, seed=seed, verbose=0)
    probs = training.predict_face_probs(model, test.as_float())
    evaluation = metrics.evaluate_detector(probs, test.labels, test.group, seed=seed)
    target_fpr = 0.01 if len(test.nonface_idx) >= 500 else 0.05
    record["evaluation"] = evaluation.to_dict()
    record["recall_at_fpr"] = metrics.recall_at_fpr(probs, test.labels, test.group, fpr=target_fpr).to_dict()
    record["auc"] = metrics.per_group_auc(probs, test.labels, test.group)
    drawn = resampling_summary(train, record["resampling_log"])
    record["darker_share_drawn"], record["ess"] = drawn["shares"], drawn["ess"]
    record.pop("resampling_log")  # per-face counts are large; the shares above summarise them
    return record


def scalar_view(record: dict) -> dict:
    """The per-seed numbers the table summarises (fractions, except seconds)."""
    ev = record["evaluation"]
    view = {f"recall_{g}": ev["recall"][g]["value"] for g in GROUPS}
    view.update(
        gap_lighter_darker=ev["lighter_darker_gap"]["value"], gap_best_worst=ev["recall_gap"]["value"],
        expected_accuracy=ev["expected_accuracy"]["value"], var_accuracy_pct2=ev["var_accuracy_pct2_ddof0"]["value"],
        fpr=ev["fpr"]["value"], accuracy=ev["accuracy"]["value"],
        gap_lighter_darker_at_fpr=record["recall_at_fpr"]["lighter_darker_gap"],
        darker_share_drawn=(record["darker_share_drawn"][-1] if record["darker_share_drawn"] else float("nan")),
        ess_last_epoch=(record["ess"][-1] if record["ess"] else float("nan")),
        train_seconds=record["train_seconds"],
    )
    return view


def fmt(s: dict, key: str, scale: float = 100.0, digits: int = 1) -> str:
    m = s[key]
    if np.isnan(m["mean"]):
        return "-"
    half = (m["ci_high"] - m["mean"]) * scale
    return f"{m['mean'] * scale:.{digits}f} ± {half:.{digits}f}" if np.isfinite(half) else f"{m['mean'] * scale:.{digits}f}"


def markdown(summary: dict, meta: dict) -> str:
    lines = [
        "# Debiasing benchmark (multi-seed)", "",
        f"Command: `{meta['command']}`  ",
        f"Profile `{meta['profile']}` ({meta['sizes']}), seeds {meta['seeds']}, machine: {meta['machine']}, "
        f"total {meta['total_minutes']:.1f} min.", "",
        "Mean ± half-width of the 95% t-interval across seeds (n-1 dof). Recall, gaps, FPR and accuracy in %, "
        "Var[A] in %² (ddof=0 across the four groups), gap at matched FPR = lighter - darker recall at the threshold "
        f"giving {meta['target_fpr']:.0%} FPR per model. 'darker drawn' = share of darker-skinned faces among the faces "
        "drawn in the last epoch (base rate = the training split's share); ESS = effective number of faces "
        "(1 / sum p²) of the last epoch's sampling weights, out of the training split's faces.", "",
        "| variant | " + " | ".join(f"{g} recall" for g in GROUPS)
        + " | lighter - darker | best - worst | gap @ matched FPR | E[A] | Var[A] | FPR | accuracy | darker drawn | ESS"
        " | train s |",
        "|---|" + "---:|" * (len(GROUPS) + 11),
    ]
    for name, s in summary.items():
        cells = [fmt(s, f"recall_{g}") for g in GROUPS] + [
            fmt(s, "gap_lighter_darker"), fmt(s, "gap_best_worst"), fmt(s, "gap_lighter_darker_at_fpr"),
            fmt(s, "expected_accuracy"), fmt(s, "var_accuracy_pct2", 1.0), fmt(s, "fpr", 100.0, 2),
            fmt(s, "accuracy"), fmt(s, "darker_share_drawn"), fmt(s, "ess_last_epoch", 1.0, 0),
            fmt(s, "train_seconds", 1.0, 0)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", nargs="*", default=DEFAULT_VARIANTS,
                        help=f"any of {list(VARIANTS)} (default: {' '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="debias", help="basename of the result files")
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    profile = get_profile(args.profile)

    start = time.perf_counter()
    records: dict[str, list[dict]] = {v: [] for v in args.variants}
    for seed in range(args.seeds):
        train, test = synthetic.load_benchmark(synthetic.config_from_profile(profile, seed=seed), progress=False)
        for name in args.variants:
            t0 = time.perf_counter()
            rec = run_one(VARIANTS[name], train, test, profile, seed)
            records[name].append(rec)
            v = scalar_view(rec)
            print(f"seed {seed} {name:>22}: lighter-darker {100 * v['gap_lighter_darker']:+5.1f} pts, "
                  f"DF {100 * v['recall_DF']:.1f} DM {100 * v['recall_DM']:.1f}, FPR {100 * v['fpr']:.2f}%, "
                  f"darker drawn {100 * v['darker_share_drawn']:.1f}% ({time.perf_counter() - t0:.0f} s)", flush=True)

    summary = {name: metrics.summarize_seeds([scalar_view(r) for r in recs]) for name, recs in records.items()}
    meta = {
        "command": "python benchmarks/debias.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "profile": profile.name,
        "sizes": f"{profile.n_train_faces}+{profile.n_train_nonfaces} train, {profile.n_test_per_group}/group + "
                 f"{profile.n_test_nonfaces} non-faces test, epochs cnn {profile.cnn_epochs} / dbvae {profile.dbvae_epochs}",
        "seeds": list(range(args.seeds)),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}",
        "total_minutes": (time.perf_counter() - start) / 60,
        "target_fpr": 0.01 if profile.n_test_nonfaces >= 500 else 0.05,
        "variants": {n: VARIANTS[n].as_dict() for n in args.variants},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(summary, meta)
    write_text_atomic(args.out / f"{args.name}.md", table)
    write_text_atomic(args.out / f"{args.name}.json", json.dumps({"meta": meta, "summary": summary, "records": records}, indent=1))
    _plots(records, summary, args.out, args.name)
    print("\n" + table)
    return 0


def _plots(records: dict, summary: dict, out: Path, name: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6, 1.2 * len(summary) + 3), 4), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(GROUPS))
    width = 0.8 / len(summary)
    for i, (variant, s) in enumerate(summary.items()):
        means = np.array([s[f"recall_{g}"]["mean"] for g in GROUPS]) * 100
        half = np.array([s[f"recall_{g}"]["ci_high"] - s[f"recall_{g}"]["mean"] for g in GROUPS]) * 100
        ax.bar(x + (i - (len(summary) - 1) / 2) * width, means, width,
               yerr=np.nan_to_num(half), capsize=2, label=variant)
    ax.set_xticks(x, GROUPS)
    ax.set_ylabel("recall (%), mean ± 95% CI over seeds")
    ax.set_title("Detection rate per group")
    ax.legend(fontsize=7, ncols=2)
    plots.save_figure(fig, out / f"{name}_group_recall.png")

    points = [{"label": v, "accuracy": s["accuracy"]["mean"], "gap": s["gap_best_worst"]["mean"],
               "accuracy_err": s["accuracy"]["std"], "gap_err": s["gap_best_worst"]["std"]}
              for v, s in summary.items()]
    plots.save_figure(plots.plot_tradeoff(points), out / f"{name}_tradeoff.png")


if __name__ == "__main__":
    sys.exit(main())
