"""The multi-seed results committed in ``benchmarks/results/``, for notebooks that show them next to a live run.

A checkout has them on disk; on Colab (an installed package, no checkout) they are fetched from the repository the
set-up cell installed from, at the release it installed (``LAB_REF``), and checked against the SHA-256 recorded at
that release (:mod:`lab_utils.evaluation.committed_sha256`), so a term's notebooks show the numbers they were written
with. Without either, the notebook says where to find the numbers and carries on: the figures are a summary of
committed evidence, never a result the notebook depends on.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from lab_utils.data.download import DownloadError, download
from lab_utils.core.env import data_dir, project_root

FETCH_TIMEOUT_S = 10.0
FETCHED = ("remedies_all",)
"""The results files a notebook fetches on Colab; their SHA-256s are recorded at each release."""
SHA256_MODULE = Path("lab_utils") / "evaluation" / "committed_sha256.py"
GITHUB = re.compile(r"^https://github\.com/(?P<owner>[^/]+)/(?P<name>[^/]+?)(\.git)?/?$")


def _recorded_sha256(name: str) -> str | None:
    from lab_utils.evaluation.committed_sha256 import SHA256  # generated; imported where it is read

    return SHA256.get(name)


def _verified(path: Path, name: str) -> dict[str, Any] | None:
    """The JSON at ``path`` if its SHA-256 is the one recorded for ``name``; else the file is removed."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != _recorded_sha256(name):
        print(f"The fetched {name}.json is not the file this release recorded (SHA-256 differs); not using it.")
        path.unlink()
        return None
    return json.loads(data)


def committed_results(name: str, repo_url: str | None = None, *, ref: str = "main") -> dict[str, Any] | None:
    """``benchmarks/results/<name>.json`` from the checkout, else from ``repo_url`` on GitHub at ``ref`` (the
    release tag the set-up cell installed); None (with a line saying so) when neither is available."""
    if name not in FETCHED:
        raise ValueError(f"{name!r} is not one of the committed results a notebook may fetch {FETCHED}; add it to "
                         "committed.FETCHED and run `python -m lab_utils.teaching.student build`.")
    local = project_root() / "benchmarks" / "results" / f"{name}.json"
    if local.is_file():
        try:
            return json.loads(local.read_text())
        except json.JSONDecodeError as err:
            print(f"{local} is not valid JSON ({err}); restore it with `git checkout -- {local}`. Carrying on "
                  "without it.")
            return None
    safe_ref = re.sub(r"[^A-Za-z0-9._-]", "_", ref)
    cached = data_dir() / "results" / safe_ref / f"{name}.json"
    repo = GITHUB.match(repo_url or "")
    if not cached.is_file() and repo:
        url = (f"https://raw.githubusercontent.com/{repo['owner']}/{repo['name']}/{ref}/benchmarks/results/"
               f"{name}.json")
        try:
            download(url, cached, timeout=FETCH_TIMEOUT_S, retries=1, progress=False)
        except (DownloadError, OSError) as err:
            print(f"Could not fetch the committed results from {url} ({type(err).__name__}).")
    if cached.is_file():
        try:
            result = _verified(cached, name)
        except (json.JSONDecodeError, UnicodeDecodeError):
            cached.unlink()
            result = None
        if result is not None:
            return result
    print(f"The committed multi-seed results ({name}.json) are not available here: see benchmarks/results/{name}.md "
          "in the repository, or its summary in the README. Carrying on without them.")
    return None
