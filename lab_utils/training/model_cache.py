"""Where the labs save their models, and the load-or-train that lets a later lab run without an earlier one's files
(Colab forgets them between sessions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab_utils.core.env import output_dir
from lab_utils.core.profiles import Profile
from lab_utils.data.dataset import FaceDataset
from lab_utils.data.sources import dataset_name
from lab_utils.nn import models
from lab_utils.training.debiasing import DBVAE
from lab_utils.training.variants import KINDS, LAB_VARIANTS, train_variant


def model_path(kind: str, profile: Profile, seed: int, dataset: str = "embedded") -> Path:
    """Where the notebooks save and look for a trained model of this kind, profile, seed and dataset."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    data = "" if dataset_name(dataset) == "embedded" else f"{dataset_name(dataset)}-"
    return output_dir("models") / f"{kind}-{data}{profile.name}-seed{seed}.keras"


def load_or_train(kind: str, train: FaceDataset, profile: Profile, *, seed: int = 0, dataset: str = "embedded") -> Any:
    """The model an earlier notebook saved for this profile, seed and dataset, else the same model trained now
    (:data:`~lab_utils.training.variants.LAB_VARIANTS`), so no lab depends on an earlier lab's files."""
    path = model_path(kind, profile, seed, dataset)
    if path.is_file():
        try:
            model = models.load_model(path)
            expected = {"vae": models.VAE, "dbvae": DBVAE}.get(kind)
            if (type(model) is not expected) if expected else isinstance(model, (models.VAE, DBVAE)):
                raise ValueError(f"it holds a {type(model).__name__}, not a {kind} (a copied or renamed file?)")
            print(f"Loaded {kind} from {path}")
            return model
        except ValueError as err:
            print(f"The saved {kind} could not be read ({err}); training it again.")
    else:
        print(f"No saved {kind} at {path}: training it now with the settings of the earlier lab.")
    model, _ = train_variant(LAB_VARIANTS[kind], train, profile, seed=seed)
    models.save_model(model, path)
    return model
