"""Which label-free rule finds the darker faces in a latent space? Candidate rules on cached latent means.

    python benchmarks/rule_search.py --runs dbvae_kl0.0005 --seeds 0 1 2

Reads the training faces' latent means that ``benchmarks/latent_search.py`` cached (``outputs/latent_search/``) and
scores every candidate rule by what it would draw: the expected share of darker faces (the sum of their sampling
probabilities; base rate about 5%) and the ESS (``1 / sum p^2``) as a share of the faces. The skin-tone attribute
is read here to score, never by a rule: every rule sees the latent means only. Train nothing; seconds per run.
Writes ``benchmarks/results/<name>.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab_utils.evaluation.intervals import methods_record  # noqa: E402
from lab_utils.core.files import write_text_atomic  # noqa: E402
from lab_utils.core.env import output_dir  # noqa: E402
from lab_utils.training.debiasing import max_rule, product_rule  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def leading_components(mu: np.ndarray, k: int) -> np.ndarray:
    """The faces' latent means projected on their ``k`` leading principal directions, each scaled to unit variance."""
    centred = mu - mu.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    z = centred @ vt[:k].T
    return z / np.maximum(z.std(axis=0), 1e-12)


def knn_inverse_density(z: np.ndarray, neighbours: int = 10, power: float = 1.0, chunk: int = 2000) -> np.ndarray:
    """Weights proportional to (distance to the k-th nearest neighbour)^(dims * power): inverse kNN density."""
    n, d = z.shape
    sq = (z ** 2).sum(axis=1)
    radius = np.empty(n)
    for start in range(0, n, chunk):
        block = z[start:start + chunk]
        d2 = sq[start:start + chunk, None] - 2.0 * block @ z.T + sq[None]
        d2[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        radius[start:start + chunk] = np.sqrt(np.maximum(np.partition(d2, neighbours - 1, axis=1)[:, neighbours - 1],
                                                         0.0))
    log_w = d * power * np.log(np.maximum(radius, 1e-12))
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def gaussian_inverse_density(z: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Weights proportional to 1 / N(z; mean, cov)^power: rare = far from the bulk in Mahalanobis distance."""
    centred = z - z.mean(axis=0)
    cov = np.cov(centred, rowvar=False) + 1e-9 * np.eye(z.shape[1])
    m2 = np.einsum("ij,jk,ik->i", centred, np.linalg.inv(cov), centred)
    log_w = 0.5 * power * m2
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def non_gaussian_components(mu: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The ``k`` independent components (FastICA on every latent dimension) of largest |excess kurtosis|.

    A rare group offset from the bulk makes the direction that separates it heavy-tailed or skewed, so the most
    non-Gaussian directions are where a 5% group would show, if it were a distinct mode of the latent space.
    """
    from sklearn.decomposition import FastICA

    s = FastICA(n_components=mu.shape[1], whiten="unit-variance", random_state=seed, max_iter=500).fit_transform(mu)
    s = (s - s.mean(axis=0)) / s.std(axis=0)
    kurtosis = (s ** 4).mean(axis=0) - 3.0
    return s[:, np.argsort(-np.abs(kurtosis))[:k]]


def mixture_balanced(z: np.ndarray, components: int, seed: int = 0) -> np.ndarray:
    """Weights that give each component of a Gaussian mixture fitted to ``z`` the same total mass: a small
    component (a rare group, if the mixture isolates one) is drawn as often as a large one."""
    from sklearn.mixture import GaussianMixture

    cov = "full" if z.shape[1] <= 8 else "diag"
    resp = GaussianMixture(components, covariance_type=cov, random_state=seed, max_iter=200).fit(z).predict_proba(z)
    w = (resp / np.maximum(resp.sum(axis=0), 1e-12)).sum(axis=1)
    return w / w.sum()


def candidates() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    rules: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "max, all dims": lambda mu: max_rule(mu, 10, 1e-3),
        "product, all dims": lambda mu: product_rule(mu, 10, 1e-3),
    }
    for k in (1, 2, 3, 4, 6, 8):
        rules[f"product, {k} PCs, alpha 1e-3"] = lambda mu, k=k: product_rule(leading_components(mu, k), 10, 1e-3)
        rules[f"product, {k} PCs, alpha 1e-2"] = lambda mu, k=k: product_rule(leading_components(mu, k), 10, 1e-2)
        rules[f"max, {k} PCs"] = lambda mu, k=k: max_rule(leading_components(mu, k), 10, 1e-3)
        for power in (0.5, 1.0):
            rules[f"kNN, {k} PCs, power {power:g}"] = (
                lambda mu, k=k, power=power: knn_inverse_density(leading_components(mu, k), power=power))
        rules[f"Gaussian, {k} PCs"] = lambda mu, k=k: gaussian_inverse_density(leading_components(mu, k))
        rules[f"Gaussian, {k} PCs, power 0.5"] = (
            lambda mu, k=k: gaussian_inverse_density(leading_components(mu, k), 0.5))
    for k in (1, 2, 3):
        rules[f"max, {k} most non-Gaussian ICs, alpha 1e-2"] = (
            lambda mu, k=k: max_rule(non_gaussian_components(mu, k), 10, 1e-2))
        rules[f"product, {k} most non-Gaussian ICs, alpha 1e-2"] = (
            lambda mu, k=k: product_rule(non_gaussian_components(mu, k), 10, 1e-2))
    for k, components in ((3, 8), (3, 16), (6, 16), (32, 16)):
        rules[f"mixture-balanced, {k} PCs, {components} components"] = (
            lambda mu, k=k, c=components: mixture_balanced(leading_components(mu, k), c))
    return rules


def score(probs: np.ndarray, darker: np.ndarray) -> dict[str, float]:
    return {"darker_share": float(probs[darker].sum()), "ess_fraction": float(1.0 / np.sum(probs ** 2) / len(probs))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="cached runs, e.g. dbvae_kl0.0005")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--name", default="rule_search")
    args = parser.parse_args(argv)
    cache = output_dir() / "latent_search"
    rules = candidates()
    table: dict[str, dict[str, list[dict[str, float]]]] = {}
    base: dict[str, list[float]] = {}
    pc_tone: dict[str, list[list[float]]] = {}
    for run in args.runs:
        table[run] = {name: [] for name in rules}
        for seed in args.seeds:
            path = cache / f"{run}_seed{seed}.npz"
            if not path.is_file():
                parser.error(f"{path}: run benchmarks/latent_search.py for {run} seed {seed} first")
            data = np.load(path)
            mu, darker = data["mu"].astype(np.float64), data["attr_darker"] == 1
            base.setdefault(run, []).append(float(darker.mean()))
            z = leading_components(mu, min(8, mu.shape[1]))
            tone = data["attr_skin_tone"].astype(np.float64)
            pc_tone.setdefault(run, []).append([abs(float(np.corrcoef(z[:, j], tone)[0, 1])) for j in range(z.shape[1])])
            for name, rule in rules.items():
                table[run][name].append(score(rule(mu), darker))
    lines = ["# Which label-free rule finds the darker faces?", "",
             f"Command: `python benchmarks/rule_search.py {' '.join(sys.argv[1:] if argv is None else argv)}`", "",
             "Expected darker share of the drawn faces (%) / ESS (% of faces), mean over seeds "
             f"{args.seeds}, from each run's training-face latent means after training (uniform sampling). "
             "Base rate: " + ", ".join(f"{r} {100 * np.mean(b):.1f}%" for r, b in base.items()) + ".", "",
             "|skin tone| correlation of the leading principal components (mean over seeds): "
             + "; ".join(f"{r}: " + ", ".join(f"PC{j + 1} {v:.2f}" for j, v in enumerate(np.mean(pc_tone[r], axis=0)))
                         for r in args.runs), "",
             "| rule | " + " | ".join(args.runs) + " |", "|---|" + "---:|" * len(args.runs)]
    for name in rules:
        cells = []
        for run in args.runs:
            s = table[run][name]
            cells.append(f"{100 * np.mean([x['darker_share'] for x in s]):.1f} / "
                         f"{100 * np.mean([x['ess_fraction'] for x in s]):.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_text_atomic(RESULTS / f"{args.name}.md", text)
    write_text_atomic(RESULTS / f"{args.name}.json", json.dumps(
        {"meta": {"command": lines[2], "seeds": args.seeds, "intervals": methods_record()}, "base_rate": base,
         "pc_tone_correlation": pc_tone, "rules": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
