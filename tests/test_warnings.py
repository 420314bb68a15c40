"""pyproject.toml's warning filters: a deprecation raised from lab_utils fails, a named third-party one is hidden."""

from __future__ import annotations

import warnings

import pytest


def test_a_deprecation_raised_from_lab_utils_fails_the_test():
    with pytest.raises(DeprecationWarning, match="old API"):
        warnings.warn_explicit("old API", DeprecationWarning, "lab_utils/nn/models.py", 1, module="lab_utils.nn.models")


def test_a_deprecation_from_a_named_third_party_package_is_hidden():
    with warnings.catch_warnings(record=True) as caught:  # keeps the filters pytest set from pyproject.toml
        warnings.warn_explicit("old API", DeprecationWarning, "jupyter_client/x.py", 1, module="jupyter_client.x")
    assert caught == []
