"""Fetching one file over the network without hanging, half-writing or silently accepting the wrong bytes.

Every connection and every read has a timeout, so a server that accepts and never answers, or stalls mid-file,
ends in an error rather than a hang. Failed attempts are retried with a pause; the bytes received so far stay
in ``.<name>.part`` beside the target, and the next attempt (or the next call, after a kill) resumes from them
when the server honours HTTP ranges, and starts over when it does not. The target name only appears once the
whole file has arrived and, when a SHA-256 is given, matched it.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from lab_utils.core.validation import integer, number

TIMEOUT_S = 30.0
RETRIES = 3
CHUNK = 1 << 16


class DownloadError(ConnectionError):
    """A download that could not complete; the message says what to do instead."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def partial_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.part")


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        status = getattr(response, "status", None)
        if offset and status != 206:  # the server sent the whole file: start over
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        with open(part, "ab" if offset else "wb") as out, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=part.name.lstrip(".")[:-5],
                disable=not progress, leave=False) as bar:
            read = getattr(response, "read1", response.read)  # what has arrived, so a stall keeps the bytes so far
            while block := read(CHUNK):
                out.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise urllib.error.URLError(f"connection closed after {part.stat().st_size} of {total} bytes")


def download(url: str, target: str | os.PathLike, *, sha256: str | None = None, timeout: float = TIMEOUT_S,
             retries: int = RETRIES, pause_s: float = 1.0, progress: bool = True) -> Path:
    """Fetch ``url`` to ``target`` (see the module docstring); returns ``target``."""
    retries = integer("retries", retries)
    number("timeout", timeout, low=0.0, low_open=True, hint=" (seconds for a connection or a read)")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(target)
    last: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            _fetch_once(url, part, timeout, progress)
            break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
            last = err
            if attempt < retries:
                time.sleep(pause_s * attempt)
    else:
        raise DownloadError(
            f"Could not download {url} after {retries} attempt(s) ({type(last).__name__}: "
            f"{getattr(last, 'reason', last)}). Check the network and the URL, and run again (it resumes from "
            f"{part.name}), or download the file yourself and pass its local path."
        )
    if sha256 is not None and (actual := file_sha256(part)) != sha256.lower():
        part.unlink(missing_ok=True)
        raise ValueError(f"The file downloaded from {url} has SHA-256 {actual}, not the expected {sha256.lower()}; "
                         "it was deleted. Check the URL and the sha256, then try again.")
    os.replace(part, target)
    return target
