"""lab_utils: reference implementations behind the DB-VAE fairness labs.

Submodules are imported on demand (``from lab_utils import data``) so that importing the package is cheap
and does not pull in Keras or its backend until a model is needed.
"""

import sys

__version__ = "0.1.0"

if "keras" not in sys.modules:  # say how to fix a KERAS_BACKEND that cannot load, before Keras fails on it
    from lab_utils.backend import check_requested

    check_requested()

GROUPS: tuple[str, ...] = ("LF", "LM", "DF", "DM")
"""Test-group codes as in the Pilot Parliaments Benchmark: Lighter/Darker skin x Female/Male presentation."""

GROUP_NAMES: dict[str, str] = {
    "LF": "lighter female",
    "LM": "lighter male",
    "DF": "darker female",
    "DM": "darker male",
}
