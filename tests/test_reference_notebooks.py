"""Every lab runs end to end with ``LAB_DATASET=reference`` on small real-format files, offline.

Labs 1-2 take their test faces from a PPB-layout folder, the later ones from a CSV table; every lab trains on a
reference-schema ``train_face.h5`` written in BGR. Cells that need attributes real data lacks must say so and
carry on, which is what the printed lines checked below show.
"""

from __future__ import annotations

import nbformat
import pytest

from lab_utils.data import sources
from lab_utils.core import notebooks
from lab_utils.core.env import DATA_ENV, OUTPUT_ENV, project_root
from reference_files import write_csv_table, write_ppb_folder, write_reference_h5

LABS = project_root() / "labs"


def _text(path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def reference_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference_labs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAB_PROFILE", "smoke")
        mp.setenv(sources.DATASET_ENV, "reference")
        mp.setenv(sources.REFERENCE_TRAIN_ENV, str(write_reference_h5(root / "train_face.h5")))
        mp.setenv(DATA_ENV, str(root / "data"))
        mp.setenv(OUTPUT_ENV, str(root / "outputs"))
        yield {"root": root, "mp": mp, "ppb": write_ppb_folder(root / "ppb"), "csv": write_csv_table(root / "table")}


@pytest.mark.parametrize("lab", notebooks.lab_notebooks(LABS), ids=lambda p: p.stem)
def test_lab_runs_on_reference_data(lab, reference_env):
    test_faces = reference_env["ppb"] if int(lab.name[:2]) <= 2 else reference_env["csv"]
    reference_env["mp"].setenv(sources.TEST_FACES_ENV, str(test_faces))
    out = reference_env["root"] / "executed" / lab.name
    notebooks.execute(lab, out, cell_timeout=600)
    text = _text(out)
    assert "Dataset 'reference'" in text
    if lab.name.startswith("01"):
        assert "cannot show how many training faces each group has" in text
    if lab.name.startswith("02"):
        assert "records no skin_tone, exposure, rotation, dx, hair_length" in text
    if lab.name.startswith("03"):
        assert "cannot show whom the resampler drew more often by skin tone" in text
    if lab.name.startswith("04"):
        assert "no conclusion about a gap can be drawn" in text
