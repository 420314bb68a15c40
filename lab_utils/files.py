"""Writing results so that nobody ever reads half a file: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if isinstance(data, str):
            handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        elif isinstance(data, bytes):
            handle = os.fdopen(fd, "wb")
        else:
            os.close(fd)
            raise TypeError(f"can only write str or bytes, got {type(data).__name__}")
        with handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` via a temporary sibling and ``os.replace``.

    A crash, a kill or a full disk leaves the old file (or none), never a truncated one that looks valid.
    """
    if not isinstance(text, str):
        raise TypeError(f"write_text_atomic writes str, got {type(text).__name__}; use write_bytes_atomic.")
    return _write_atomic(path, text)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """The same for binary content (images)."""
    if not isinstance(data, bytes):
        raise TypeError(f"write_bytes_atomic writes bytes, got {type(data).__name__}; use write_text_atomic.")
    return _write_atomic(path, data)
