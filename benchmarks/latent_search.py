"""Does the latent space learn? The VAE's and the DB-VAE's latent criteria at candidate loss settings.

    python benchmarks/latent_search.py --kind vae dbvae --kl-weights 0.05 0.005 0.0005 --seeds 0 1 2
    python benchmarks/latent_search.py --resume ...        # the same arguments: continue an interrupted run

For each model kind, KL weight and seed this trains the model at the profile's scale (the DB-VAE with uniform
sampling, so the latent space is what a resampling recompute would first see) and measures on the test faces:

- **active units**: latent dimensions whose posterior mean varies across test faces by more than 0.01 (variance),
  the usual criterion;
- **KL** per face, in nats (what the code carries);
- **distinct reconstructions**: the mean L1 distance between the reconstructions of two different test faces,
  divided by that between the two faces themselves (0: every reconstruction is the same average face);
- **probe AUC**: the labs' one probe protocol (``lab_utils.evaluation.probes.cross_validated_probe``) on the
  latent means, darker against lighter test faces;
- for the DB-VAE, its per-group recall and gap at threshold 0.5 and at the matched FPR.

It also caches the training faces' latent means with their attributes (``outputs/latent_search/``, git-ignored)
so that resampling rules can be compared offline (``benchmarks/rule_search.py``). The attributes are read here to
measure, never to train. Writes ``benchmarks/results/<name>.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab_utils import GROUPS  # noqa: E402
from lab_utils.data import benchmark  # noqa: E402
from lab_utils.evaluation import metrics, probes, threshold_free  # noqa: E402
from lab_utils.evaluation.latents import active_units  # noqa: E402
from lab_utils.evaluation.intervals import methods_record  # noqa: E402
from lab_utils.core.files import write_text_atomic  # noqa: E402
from lab_utils.nn.models import pad_batch, predict_batch  # noqa: E402
from lab_utils.core.env import machine_summary, output_dir  # noqa: E402
from lab_utils.core.profiles import get_profile  # noqa: E402
from lab_utils.training import trainers  # noqa: E402
from lab_utils.training.variants import Variant, train_variant  # noqa: E402
from lab_utils.evaluation.latents import encode_posteriors  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PAIRS = 2000


def reconstruct(model: Any, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Reconstructions of float images in [0, 1] from their posterior means (no sampling noise)."""
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        mu, _ = model.encode(pad_batch(x, batch_size))
        out.append(np.asarray(predict_batch(model.decoder, np.asarray(mu)))[: len(x)])
    return np.concatenate(out)


def latent_criteria(model: Any, test, seed: int) -> dict[str, Any]:
    """The three latent criteria of the issue, plus the KL per face, on the test faces."""
    faces = test.subset(test.face_idx, name="test faces")
    mu, logvar = encode_posteriors(model, faces, progress=False)
    images = faces.as_float()
    recon = reconstruct(model, images)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(images), PAIRS), rng.integers(0, len(images), PAIRS)
    keep = a != b
    a, b = a[keep], b[keep]
    between_recon = np.abs(recon[a] - recon[b]).mean()
    between_faces = np.abs(images[a] - images[b]).mean()
    kl = 0.5 * (np.exp(logvar) + mu ** 2 - 1.0 - logvar).sum(axis=1)
    darker = np.isin(faces.group, [GROUPS.index("DF"), GROUPS.index("DM")])
    score = probes.cross_validated_probe(mu, darker, seed=seed)
    tone = np.asarray(faces.attributes["skin_tone"], dtype=np.float64)
    corr = [abs(np.corrcoef(mu[:, j], tone)[0, 1]) if mu[:, j].std() > 0 else 0.0 for j in range(mu.shape[1])]
    return {"active_units": int(active_units(mu).sum()),
            "kl_nats": float(kl.mean()),
            "recon_l1": float(np.abs(recon - images).mean()),
            "distinct_ratio": float(between_recon / between_faces),
            "probe_auc": score.auc, "probe_balanced_accuracy": score.balanced_accuracy,
            "best_tone_corr": float(max(corr)), "best_tone_dim": int(np.argmax(corr))}


def detector_view(model: Any, test) -> dict[str, Any]:
    logits = trainers.predict_face_logits(model, test.as_float())
    ev = metrics.evaluate_detector(trainers.sigmoid(logits), test.labels, test.group, n_boot=200)
    matched = threshold_free.recall_at_fpr(logits, test.labels, test.group, logits=True,
                                           fpr=threshold_free.matched_fpr_target(len(test.nonface_idx)))
    return {"recall": {g: ev.recall[g].value for g in GROUPS}, "gap": ev.lighter_darker_gap.value,
            "gap_at_fpr": matched.lighter_darker_gap, "fpr": ev.fpr.value}


def run(kind: str, kl: float, seed: int, profile, epochs: int | None, cache: Path) -> dict[str, Any]:
    train, test = benchmark.load_benchmark(benchmark.config_from_profile(profile, seed=seed), progress=False)
    variant = Variant(f"{kind}_kl{kl:g}", kind=kind, kl_weight=kl)
    model, record = train_variant(variant, train, profile, seed=seed, epochs=epochs, verbose=0)
    out = {"kind": kind, "kl_weight": kl, "seed": seed, "train_seconds": record["train_seconds"],
           "history": record["history"], **latent_criteria(model, test, seed)}
    if kind == "dbvae":
        out["detector"] = detector_view(model, test)
    cache_means(model, train, cache / f"{kind}_kl{kl:g}_seed{seed}.npz")
    return out


def cache_means(model: Any, train, path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Encode the training faces and save their latent means, log-variances and attributes to ``path`` (for
    ``rule_search.py``); returns the means and the faces' attributes."""
    mu, logvar = encode_posteriors(model, train, progress=False)
    attrs = {k: np.asarray(v)[train.face_idx] for k, v in train.attributes.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, mu=mu, logvar=logvar, **{f"attr_{k}": v for k, v in attrs.items()})
    return mu, attrs


def header(title: str, meta: dict) -> list[str]:
    """The first lines of a results table: title, command, profile, machine and minutes."""
    return [f"# {title}", "", f"Command: `{meta['command']}`  ",
            f"Profile `{meta['profile']}`, machine: {meta['machine']}, total {meta['total_minutes']:.1f} min.", ""]


def markdown(runs: list[dict], meta: dict) -> str:
    lines = header("Does the latent space learn?", meta) + [
             "Per run, on the test faces: active units (posterior-mean variance > 0.01, of the latent dimensions), "
             "KL per face (nats), reconstructions' distinctness (L1 between two faces' reconstructions / between "
             "the faces), the cross-validated probe AUC (darker vs lighter), the latent mean most correlated with "
             "skin tone (|r|), and for the DB-VAE (uniform sampling) its lighter - darker gap at threshold 0.5 "
             "and at the matched FPR (points).", "",
             "| kind | KL weight | seed | active | KL (nats) | distinct | probe AUC | best tone |r| | gap | gap @ FPR "
             "| FPR | train s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        d = r.get("detector")
        det = (f"{100 * d['gap']:+.1f} | {100 * d['gap_at_fpr']:+.1f} | {100 * d['fpr']:.2f}%" if d else "| |")
        lines.append(f"| {r['kind']} | {r['kl_weight']:g} | {r['seed']} | {r['active_units']} | {r['kl_nats']:.2f} | "
                     f"{r['distinct_ratio']:.2f} | {r['probe_auc']:.3f} | {r['best_tone_corr']:.2f} | {det} | "
                     f"{r['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def resumed(checkpoint: Path, identity: dict, resume: bool, parser: argparse.ArgumentParser) -> tuple[list[dict], float]:
    """The runs and minutes an interrupted run left in ``checkpoint`` (with ``--resume`` and the same arguments)."""
    if not (resume and checkpoint.is_file()):
        return [], 0.0
    saved = json.loads(checkpoint.read_text())
    if saved["identity"] != identity:
        parser.error(f"--resume: {checkpoint} was written with {saved['identity']}")
    return saved["runs"], saved["minutes"]


def save_checkpoint(checkpoint: Path, identity: dict, runs: list[dict], minutes: float) -> None:
    write_text_atomic(checkpoint, json.dumps({"identity": identity, "runs": runs, "minutes": minutes}))


def finish(script: str, argv: list[str] | None, profile, name: str, runs: list[dict], minutes: float, markdown,
           checkpoint: Path) -> int:
    """The results' meta (command, profile, machine, interval methods, minutes), then :func:`publish`."""
    meta = {"command": f"python benchmarks/{script} " + shlex.join(sys.argv[1:] if argv is None else argv),
            "profile": profile.name, "machine": machine_summary(), "intervals": methods_record(),
            "total_minutes": minutes}
    publish(name, meta, runs, markdown(runs, meta), checkpoint)
    return 0


def publish(name: str, meta: dict, runs: list[dict], table: str, checkpoint: Path) -> None:
    """Write ``benchmarks/results/<name>.{md,json}``, drop the checkpoint, print the table."""
    write_text_atomic(RESULTS / f"{name}.md", table)
    write_text_atomic(RESULTS / f"{name}.json", json.dumps({"meta": meta, "runs": runs}, indent=1))
    checkpoint.unlink(missing_ok=True)
    print("\n" + table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--kind", nargs="+", choices=["vae", "dbvae"], default=["vae", "dbvae"])
    parser.add_argument("--kl-weights", type=float, nargs="+", default=[5e-2, 5e-3, 5e-4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: the profile's for each kind")
    parser.add_argument("--name", default="latent_search")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    cache = output_dir() / "latent_search"
    checkpoint = RESULTS / f"{args.name}.partial.json"
    identity = {k: getattr(args, k) for k in ("profile", "kind", "kl_weights", "seeds", "epochs")}
    runs, minutes_before = resumed(checkpoint, identity, args.resume, parser)
    start = time.perf_counter()
    done = {(r["kind"], r["kl_weight"], r["seed"]) for r in runs}
    for seed in args.seeds:
        for kind in args.kind:
            for kl in args.kl_weights:
                if (kind, kl, seed) in done:
                    continue
                t0 = time.perf_counter()
                runs.append(run(kind, kl, seed, profile, args.epochs, cache))
                r = runs[-1]
                save_checkpoint(checkpoint, identity, runs, minutes_before + (time.perf_counter() - start) / 60)
                print(f"{kind} kl {kl:g} seed {seed}: {r['active_units']} active, KL {r['kl_nats']:.2f}, distinct "
                      f"{r['distinct_ratio']:.2f}, probe {r['probe_auc']:.3f}"
                      + (f", gap {100 * r['detector']['gap']:+.1f}" if "detector" in r else "")
                      + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    return finish("latent_search.py", argv, profile, args.name, runs,
                  minutes_before + (time.perf_counter() - start) / 60, markdown, checkpoint)


if __name__ == "__main__":
    sys.exit(main())
