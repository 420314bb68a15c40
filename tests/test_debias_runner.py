"""The benchmark runner's bookkeeping: paired differences match seeds, merges refuse to mix incompatible runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from lab_utils import GROUPS
from lab_utils.nn.losses import STRONG_KL_WEIGHT
from lab_utils.training.variants import Variant

_SPEC = importlib.util.spec_from_file_location(
    "debias", Path(__file__).resolve().parent.parent / "benchmarks" / "debias.py")
debias = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(debias)


def record(seed: int, darker_recall: float, fpr: float = 0.01) -> dict:
    """The fields scalar_view reads, with lighter recall 1.0 and darker recall as given."""
    recall = {g: {"value": 1.0 if g in ("LF", "LM") else darker_recall} for g in GROUPS}
    ev = {"recall": recall, "lighter_darker_gap": {"value": 1.0 - darker_recall},
          "recall_gap": {"value": 1.0 - darker_recall}, "expected_accuracy": {"value": (1.0 + darker_recall) / 2},
          "var_accuracy_pct2_ddof0": {"value": 0.0}, "fpr": {"value": fpr}, "accuracy": {"value": 0.95}}
    return {"seed": seed, "evaluation": ev, "recall_at_fpr": {"lighter_darker_gap": 1.0 - darker_recall},
            "darker_share_drawn": [], "ess": [], "train_seconds": 1.0}


def test_paired_differences_match_records_by_seed_not_position():
    records = {"cnn": [record(0, 0.80), record(1, 0.90)],
               "dbvae": [record(1, 0.95), record(0, 0.82)]}  # stored in another order
    paired = debias.paired_differences(records, "cnn")
    assert list(paired) == ["dbvae"]
    assert paired["dbvae"]["per_seed_gap"] == pytest.approx([-0.05, -0.02])
    assert paired["dbvae"]["summary"]["gap_lighter_darker"]["mean"] == pytest.approx(-0.035)
    assert paired["dbvae"]["summary"]["darker_recall"]["mean"] == pytest.approx(0.035)


def test_paired_differences_need_two_shared_seeds():
    records = {"cnn": [record(0, 0.8), record(1, 0.9)], "dbvae": [record(1, 0.95), record(2, 0.9)]}
    assert debias.paired_differences(records, "cnn") == {}


def _write(path: Path, variants: dict[str, list[dict]], seeds: list[int], profile: str = "cpu") -> Path:
    meta = {"command": f"run {path.stem}", "profile": profile, "seeds": seeds, "total_minutes": 1.5,
            "variants": {v: {"name": v} for v in variants}}
    path.write_text(json.dumps({"meta": meta, "records": variants}))
    return path


def test_merge_pools_a_variant_over_distinct_seeds(tmp_path):
    a = _write(tmp_path / "a.json", {"cnn": [record(0, 0.8)], "dbvae": [record(0, 0.9)]}, [0])
    b = _write(tmp_path / "b.json", {"cnn": [record(3, 0.7)]}, [3])
    records, meta = debias.merge_runs([b, a])
    assert [r["seed"] for r in records["cnn"]] == [0, 3] and len(records["dbvae"]) == 1
    assert meta["seeds"] == [0, 3] and meta["total_minutes"] == 3.0
    assert meta["command"] == "run b ; run a"


def test_merge_refuses_overlapping_seeds_other_profiles_and_missing_files(tmp_path):
    a = _write(tmp_path / "a.json", {"cnn": [record(0, 0.8)]}, [0])
    again = _write(tmp_path / "again.json", {"cnn": [record(0, 0.8)]}, [0])
    with pytest.raises(ValueError, match=r"'cnn' has seed\(s\) \[0\] in another file"):
        debias.merge_runs([a, again])
    smoke = _write(tmp_path / "smoke.json", {"dbvae": [record(0, 0.8)]}, [0], profile="smoke")
    with pytest.raises(ValueError, match="different profiles"):
        debias.merge_runs([a, smoke])
    with pytest.raises(FileNotFoundError, match="no such results file"):
        debias.merge_runs([tmp_path / "absent.json"])


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    trained = []

    def fake_run_one(variant, train, test, profile, seed, epochs=None, cache=None):
        if len(trained) == 3 and not resumed:
            raise KeyboardInterrupt  # cut off after three finished runs
        trained.append((seed, variant.name))
        return record(seed, 0.9 if variant.kind == "cnn" else 0.95)

    monkeypatch.setattr(debias, "run_one", fake_run_one)
    monkeypatch.setattr(debias.benchmark, "load_benchmark", lambda *a, **k: (None, None))
    args = ["--profile", "smoke", "--seeds", "2", "--variants", "cnn", "dbvae_uniform", "--out", str(tmp_path),
            "--name", "run"]
    resumed = False
    with pytest.raises(KeyboardInterrupt):
        debias.main(args)
    assert (tmp_path / "run.partial.json").is_file() and not (tmp_path / "run.json").exists()

    with pytest.raises(ValueError, match="was written with"):
        debias.main(args[:3] + ["3"] + args[4:] + ["--resume"])  # other seeds: not the same run
    resumed = True
    assert debias.main(args + ["--resume"]) == 0
    assert trained == [(0, "cnn"), (0, "dbvae_uniform"), (1, "cnn"), (1, "dbvae_uniform")]  # nothing twice
    result = json.loads((tmp_path / "run.json").read_text())
    assert {v: [r["seed"] for r in recs] for v, recs in result["records"].items()} == {
        "cnn": [0, 1], "dbvae_uniform": [0, 1]}
    assert not (tmp_path / "run.partial.json").exists()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        debias.main(args + ["--resume"])


def test_the_remedies_suite_names_known_variants_and_its_references():
    suite = debias.SUITES["remedies"]
    assert set(suite["variants"]) <= set(debias.VARIANTS)
    assert set(suite["references"]) <= set(suite["variants"]) and suite["first_seed"] >= 3 and suite["seeds"] >= 5
    oracles = [v for v in suite["variants"] if debias.VARIANTS[v].reads_attributes]
    assert oracles and all("oracle" in v for v in oracles)  # anything that reads the attribute says so in its name


def test_remedy_diagnostics_and_ap_reach_the_table():
    import numpy as np

    from lab_utils.data.dataset import FaceDataset

    darker = np.array([1, 0, 0, 0, 1, 0], np.int8)
    train = FaceDataset(np.zeros((8, 64, 64, 3), np.uint8), np.r_[np.ones(6), np.zeros(2)],
                        {"darker": np.r_[darker, [-1, -1]].astype(np.int8)})
    rec = record(0, 0.8)
    rec.update(remedy={"anchors": np.array([0, 4, 1, 2]), "errors": np.array([], int)},
               ap={g: 0.9 for g in GROUPS}, n_params=10)
    rec["evaluation"]["score_kl_lighter_darker"] = 0.1
    debias._remedy_diagnostics(rec, train)
    assert rec["remedy"]["darker_share_of_anchors"] == 0.5 and np.isnan(rec["remedy"]["darker_share_of_errors"])
    view = debias.scalar_view(rec)
    assert view["ap_DF"] == 0.9 and view["ap_gap_lighter_darker"] == 0.0 and view["n_params"] == 10
    summary = {"jtt": debias.seeds.summarize_seeds([view, view])}
    table = debias.markdown(summary, {}, {"command": "c", "profile": "cpu", "sizes": "s", "seeds": [0, 1],
                                          "machine": "m", "total_minutes": 1.0, "target_fpr": 0.01},
                            {"jtt": [0.5, 0.25]})
    assert "| jtt | 90.0 ± 0.0 | 90.0 ± 0.0 | 90.0 ± 0.0 | 90.0 ± 0.0 | 0.0 ± 0.0 | 0.100 ± 0.000 | 10 | 37.5% |" in table


def test_a_latent_remedy_reuses_the_seeds_dbvae_as_generator(monkeypatch):
    trained = []

    def fake_train(variant, *args, **kwargs):
        trained.append((variant.name, variant.kl_weight))
        return f"model-{variant.kl_weight:g}", {"train_seconds": 7.0}

    monkeypatch.setattr(debias, "train_variant", fake_train)
    cache = {debias.LAB_DBVAE: ("lab-dbvae", 70.0)}  # what run_one stores after training the labs' DB-VAE
    assert debias.generator_for(debias.VARIANTS["latent_rare_n1000"], None, None, 0, None, cache) == ("lab-dbvae", 70.0)
    assert debias.generator_for(debias.VARIANTS["cnn"], None, None, 0, None, cache) == (None, 0.0)
    named = debias.VARIANTS[f"latent_rare_n1000_kl{debias.REFERENCE_KL:g}"]  # the labs' weight, named: the same generator
    assert debias.generator_for(named, None, None, 0, None, cache) == ("lab-dbvae", 70.0)
    strong = Variant("latent_rare_strong", kind="cnn", remedy="latent_rare",
                     options={"generator_kl_weight": STRONG_KL_WEIGHT})
    assert debias.generator_for(strong, None, None, 0, None, cache) == (f"model-{STRONG_KL_WEIGHT:g}", 7.0)
    assert debias.generator_for(strong, None, None, 0, None, cache)[0] == f"model-{STRONG_KL_WEIGHT:g}"
    assert trained == [(f"generator_kl{STRONG_KL_WEIGHT:g}", STRONG_KL_WEIGHT)]  # trained once, then reused
    # the runner's own DB-VAE is the generator a latent remedy would train, so run_one caches it
    from dataclasses import replace

    from lab_utils.training.variants import generator_variant

    assert replace(debias.VARIANTS[debias.LAB_DBVAE], name="") == replace(generator_variant(debias.REFERENCE_KL), name="")
