"""Writing results so that nobody ever reads half a file: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{32}(?P<suffix>\.[\w.]+)$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh sibling name for the writer to create (``suffix`` keeps a format's required ending, e.g.
    ``.keras``); it replaces ``path`` when the block succeeds and is deleted when it fails.

    The writer creates the file itself, so it gets the usual permissions (``mkstemp``'s would be 0600).
    A crash, a kill or a full disk leaves the old file (or none), never a truncated one that looks valid. The
    temporary name carries the writer's process id, so :func:`remove_stale_temporaries` can tell a killed
    writer's leftovers from a write still in progress.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder where a file belongs; delete or rename the folder, then run "
                                "again.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # e.g. a folder under /sys, or on a read-only disk
        raise type(err)(err.errno, f"Cannot create the folder {path.parent} ({err.strerror}); point $LAB_OUTPUT_DIR "
                                   "or $LAB_DATA_DIR (or the path you passed) at a folder you can write to") from None
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if _disk_full(err, path.parent):  # h5py, for one, says "Can't decrement id ref count"
            raise OSError(errno.ENOSPC, f"No space left on the disk while writing {path}; nothing half-written was "
                                        "kept. Free some space (or point $LAB_DATA_DIR / $LAB_OUTPUT_DIR at another "
                                        "disk) and run again") from err
        raise


def _disk_full(err: BaseException, folder: Path) -> bool:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    if not isinstance(err, Exception):  # Ctrl-C, SystemExit: never re-labelled
        return False
    try:
        return shutil.disk_usage(folder).free < 1_000_000
    except OSError:
        return False


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` through :func:`atomic_path`."""
    if not isinstance(text, str):
        raise TypeError(f"write_text_atomic writes str, got {type(text).__name__}; use write_bytes_atomic.")
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """The same for binary content (images)."""
    if not isinstance(data, bytes):
        raise TypeError(f"write_bytes_atomic writes bytes, got {type(data).__name__}; use write_text_atomic.")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files in ``folder`` that :func:`atomic_path` writers left when they were killed (their
    process is gone); a write still in progress, here or in another process, is left alone."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        match = _TEMPORARY.match(path.name)
        if match and int(match["pid"]) != os.getpid() and not _alive(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
