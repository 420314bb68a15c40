"""Atomic text writes: the new content or the old, never a torn file or a leftover temporary."""

from pathlib import Path

import pytest

from lab_utils.core.files import atomic_path, write_bytes_atomic, write_text_atomic


def test_writes_creates_folders_and_keeps_newlines_as_given(tmp_path):
    path = write_text_atomic(tmp_path / "a" / "b" / "report.md", "line 1\r\nline 2\n")
    assert path.read_bytes() == b"line 1\r\nline 2\n"
    assert [p.name for p in path.parent.iterdir()] == ["report.md"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "grades.csv"
    path.write_text("old")
    with pytest.raises(TypeError):
        write_text_atomic(path, b"bytes are not text")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_bytes_are_written_as_given_and_types_are_not_mixed(tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00"
    assert write_bytes_atomic(tmp_path / "f.png", png).read_bytes() == png
    with pytest.raises(TypeError, match="write_bytes_atomic writes bytes"):
        write_bytes_atomic(tmp_path / "g.png", "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_files_get_the_usual_permissions_not_0600(tmp_path):
    """Results are shared (an instructor's grades, a course's figures), so the umask decides, as for open()."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert (write_text_atomic(tmp_path / "atomic.txt", "x").stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


def test_atomic_path_replaces_on_success_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target, suffix=".tmp.keras") as tmp:
        assert tmp.name.endswith(".tmp.keras") and tmp.parent == tmp_path
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_environment_folders_that_are_files_are_refused(tmp_path, monkeypatch):
    from lab_utils.core import env

    (tmp_path / "f").write_text("x")
    monkeypatch.setenv(env.DATA_ENV, str(tmp_path / "f"))
    with pytest.raises(ValueError, match=r"from \$LAB_DATA_DIR\) is a file, not a folder"):
        env.data_dir()
    monkeypatch.setenv(env.OUTPUT_ENV, str(tmp_path / "f"))
    with pytest.raises(ValueError, match=r"from \$LAB_OUTPUT_DIR\) is a file"):
        env.output_dir("models")


def test_a_folder_where_the_file_belongs_is_named(tmp_path):
    (tmp_path / "out.json").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder where a file belongs"):
        write_text_atomic(tmp_path / "out.json", "{}")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys, where no folder can be created")
def test_a_folder_that_cannot_be_created_is_named_with_what_to_do():
    with pytest.raises(OSError, match="Cannot create the folder /sys/lab_utils_outputs .*LAB_OUTPUT_DIR"):
        write_text_atomic("/sys/lab_utils_outputs/summary.md", "x")


def test_a_full_disk_says_so_and_leaves_no_temporary(tmp_path, monkeypatch):
    import errno
    import shutil as shutil_module

    from lab_utils.core import files

    monkeypatch.setattr(files.shutil, "disk_usage", lambda folder: shutil_module._ntuple_diskusage(10**9, 10**9, 0))
    with pytest.raises(OSError) as caught:
        with files.atomic_path(tmp_path / "big.h5") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("Can't decrement id ref count (unable to extend file properly)")
    assert caught.value.errno == errno.ENOSPC and "No space left" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
