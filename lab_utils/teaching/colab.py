"""The repository's address in one place (``pyproject.toml``, ``[project.urls] Repository``) and everything that
repeats it: each notebook's set-up cell, which installs ``lab_utils`` from it on Colab, and the README's
Open-in-Colab badges. ``sync`` writes them from the address; with ``check=True`` it only reports where they differ."""

from __future__ import annotations

import re
from pathlib import Path

from lab_utils.files import write_text_atomic
from lab_utils.running.notebooks import LAB_GLOB, cell_source, read_json, to_json

REPOSITORY = re.compile(r'(?m)^Repository\s*=\s*"(?P<url>[^"]+)"')
SETUP_LINE = re.compile(r'(?m)^LAB_REPO = "[^"]*"')
GITHUB = re.compile(r"^https://github\.com/(?P<owner>[^/]+)/(?P<name>[^/]+?)(\.git)?/?$")
BADGES_START, BADGES_END = "<!-- colab-badges:start -->", "<!-- colab-badges:end -->"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def repository_url(root: Path) -> str:
    """The ``Repository`` address in ``root/pyproject.toml``."""
    path = Path(root) / "pyproject.toml"
    match = REPOSITORY.search(path.read_text(encoding="utf-8")) if path.is_file() else None
    if not match or not GITHUB.match(match["url"]):
        raise ValueError(f"{path}: no [project.urls] Repository = \"https://github.com/OWNER/NAME\" line; add it "
                         "(it is where the notebooks install lab_utils from on Colab).")
    return match["url"]


def badges(url: str, labs_dir: Path) -> str:
    """A Markdown table with an Open-in-Colab badge for every solution and student notebook."""
    repo = GITHUB.match(url)
    base = f"https://colab.research.google.com/github/{repo['owner']}/{repo['name']}/blob/main/labs"
    rows = ["| notebook | solution | student version |", "|---|---|---|"]
    for path in sorted(Path(labs_dir).glob(LAB_GLOB)):
        rows.append(f"| `{path.name}` | [![Open in Colab]({BADGE})]({base}/{path.name}) "
                    f"| [![Open in Colab]({BADGE})]({base}/student/{path.name}) |")
    return "\n".join(rows)


def sync(root: Path, *, check: bool = False) -> list[str]:
    """Write the address into the solution notebooks' set-up cells and the README's badge block (``check``: only
    list what differs). Returns what was (or would be) changed, one line each."""
    root = Path(root)
    url = repository_url(root)
    line = f'LAB_REPO = "{url}"'
    changes = []
    for path in sorted((root / "labs").glob(LAB_GLOB)):
        notebook = read_json(path)
        cells = [c for c in notebook["cells"] if c.get("cell_type") == "code" and SETUP_LINE.search(cell_source(c))]
        if not cells:
            changes.append(f"{path}: no set-up cell with a LAB_REPO line")
            continue
        source = cell_source(cells[0])
        if SETUP_LINE.search(source).group(0) != line:
            changes.append(f"{path}: LAB_REPO is not {url}")
            if not check:
                new = SETUP_LINE.sub(line, source, count=1)
                cells[0]["source"] = new.splitlines(keepends=True)
                write_text_atomic(path, to_json(notebook))
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(BADGES_START), text.find(BADGES_END)
    if start < 0 or end < start:
        changes.append(f"{readme}: no {BADGES_START} ... {BADGES_END} block for the Open-in-Colab badges")
        return changes
    block = f"{BADGES_START}\n{badges(url, root / 'labs')}\n{BADGES_END}"
    if text[start:end + len(BADGES_END)] != block:
        changes.append(f"{readme}: the Open-in-Colab badges do not point at {url}")
        if not check:
            write_text_atomic(readme, text[:start] + block + text[end + len(BADGES_END):])
    return changes
