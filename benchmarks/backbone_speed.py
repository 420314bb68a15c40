"""Training speed and size of Lab 5's detector backbones, side by side in one run.

    python benchmarks/backbone_speed.py                  # 2 interleaved repeats, 2 epochs each, 10k+10k images
    python benchmarks/backbone_speed.py --repeats 3 --n-images 20000

Each backbone (``lab_utils.nn.backbones.BACKBONES``) trains with ``trainers.train_classifier`` on random images at
batch 32; repeats are interleaved across backbones so drifting machine load hits all of them alike. Reported:
trainable parameters, the fastest timed epoch (the first, which includes tracing, is not timed) in images per second,
and seconds per epoch at the cpu profile's size. The multi-seed gap of each backbone is in ``remedies.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from throughput import EpochTimer, random_dataset  # noqa: E402

from lab_utils.evaluation.intervals import methods_record  # noqa: E402
from lab_utils.core.files import write_text_atomic  # noqa: E402
from lab_utils.nn.backbones import BACKBONES, build_backbone  # noqa: E402
from lab_utils.core.env import machine_summary, seed_everything  # noqa: E402
from lab_utils.core.profiles import get_profile  # noqa: E402
from lab_utils.training import trainers  # noqa: E402
from lab_utils.training.config import TrainingConfig  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="per repeat; the first is tracing and is not timed")
    parser.add_argument("--n-images", type=int, default=20_000, help="faces + non-faces, half each")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.epochs < 2 or args.n_images < 64:
        parser.error("--repeats >= 1, --epochs >= 2 and --n-images >= 64")
    train = random_dataset(args.n_images // 2, args.n_images - args.n_images // 2, seed=0)
    cpu = get_profile("cpu")
    rows: dict[str, dict] = {name: {"params": build_backbone(name).count_params(), "epochs": []} for name in BACKBONES}
    for repeat in range(args.repeats):
        for name in BACKBONES:
            seed_everything(repeat)
            model, timer = build_backbone(name), EpochTimer()
            trainers.train_classifier(model, train, epochs=args.epochs, seed=repeat, callbacks=[timer], verbose=0,
                                      config=TrainingConfig(ema_momentum=None))
            rows[name]["epochs"] += timer.seconds[1:]
            print(f"repeat {repeat + 1}: {name:>8} {min(timer.seconds[1:]):.1f} s per epoch", flush=True)
    images_per_epoch = (len(train) // 32) * 32
    for row in rows.values():
        best = min(row["epochs"])
        row.update(best_epoch_s=best, images_per_s=images_per_epoch / best,
                   cpu_profile_epoch_s=best * (cpu.n_train_faces + cpu.n_train_nonfaces) / images_per_epoch)
    command = "python benchmarks/backbone_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = ["# Backbone training speed (side by side)", "",
             f"Command: `{command}`  ", f"Machine: {machine_summary()}; {dt.date.today().isoformat()}.", "",
             f"{args.n_images} random 64x64 images, batch 32, {args.repeats} interleaved repeats of {args.epochs} "
             "epochs; the fastest timed epoch (not the first).", "",
             "| backbone | parameters | images / s | s per epoch at the cpu profile (20k images) |", "|---|---:|---:|---:|"]
    lines += [f"| {n} | {r['params']:,} | {r['images_per_s']:,.0f} | {r['cpu_profile_epoch_s']:.1f} |" for n, r in rows.items()]
    table = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "backbone_speed.md", table)
    write_text_atomic(args.out / "backbone_speed.json", json.dumps({"command": command, "intervals": methods_record(), "rows": rows}, indent=1))
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
