"""The multi-seed results committed in ``benchmarks/results/``, for notebooks that show them next to a live run.

A checkout has them on disk; on Colab (an installed package, no checkout) they are fetched once from the
repository the set-up cell installed from. Without either, the notebook says where to find the numbers and
carries on: the figures are a summary of committed evidence, never a result the notebook depends on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab_utils.data.download import DownloadError, download
from lab_utils.running.env import data_dir, project_root
from lab_utils.teaching.colab import GITHUB

FETCH_TIMEOUT_S = 10.0


def committed_results(name: str, repo_url: str | None = None, *, branch: str = "main") -> dict[str, Any] | None:
    """``benchmarks/results/<name>.json`` from the checkout, else from ``repo_url`` on GitHub; None (with a line
    saying so) when neither is reachable."""
    local = project_root() / "benchmarks" / "results" / f"{name}.json"
    if local.is_file():
        return json.loads(local.read_text())
    cached = data_dir() / "results" / f"{name}.json"
    repo = GITHUB.match(repo_url or "")
    if not cached.is_file() and repo:
        url = (f"https://raw.githubusercontent.com/{repo['owner']}/{repo['name']}/{branch}/benchmarks/results/"
               f"{name}.json")
        try:
            download(url, cached, timeout=FETCH_TIMEOUT_S, retries=1, progress=False)
        except (DownloadError, OSError) as err:
            print(f"Could not fetch the committed results from {url} ({type(err).__name__}).")
    if cached.is_file():
        try:
            return json.loads(cached.read_text())
        except json.JSONDecodeError:
            cached.unlink()
    print(f"The committed multi-seed results ({name}.json) are not available here: see benchmarks/results/{name}.md "
          "in the repository, or its summary in the README. Carrying on without them.")
    return None
