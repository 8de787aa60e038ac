"""Atomic writes: nothing half-written, nothing the user had lost on an error."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pixelwise.errors import PixelwiseError
from pixelwise.files import (
    LOCK_FILE,
    atomic_dir,
    atomic_path,
    check_apart,
    folder_entries,
    output_lock,
    staged_entries,
)


def test_atomic_path_keeps_the_old_file_when_the_write_fails(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "good"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_path_keeps_the_suffix_for_format_sniffing_writers(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "mask.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "mask.png").read_bytes() == b"x"


def test_atomic_dir_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "export"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("one")
    with pytest.raises(ValueError), atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("two")
        raise ValueError
    assert sorted(path.name for path in target.iterdir()) == ["a.txt"]
    with atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("three")
    assert sorted(path.name for path in target.iterdir()) == ["c.txt"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_new_files_and_folders_get_the_modes_of_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("a")
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "b.txt").write_text("b")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_text("old")
    target.chmod(0o640)
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.stat().st_mode & 0o777 == 0o640 and target.read_text() == "new"


def test_an_os_error_while_writing_names_the_target_not_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "mask.png"
    with pytest.raises(OSError, match="No space left") as error, atomic_path(target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert error.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError) as other, atomic_path(target):
        (tmp_path / "elsewhere" / "x").read_text()  # an error about another file keeps its own name
    assert other.value.filename == str(tmp_path / "elsewhere" / "x")


def test_the_output_lock_refuses_a_second_holder_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with output_lock(out):
        assert (out / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        # a second holder (here a second open file description, as another process would have) refuses
        refused = pytest.raises(PixelwiseError, match=rf"out: another pixelwise process \(PID {os.getpid()}\)")
        with refused, output_lock(out):
            pass
        (out / "mask.png").write_text("written")
    assert not (out / LOCK_FILE).exists() and (out / "mask.png").exists()
    # a lock file left by a killed process locks nothing
    (out / LOCK_FILE).write_text("999999\n")
    with output_lock(out):
        pass
    # a folder the lock created and nobody wrote into is removed again
    with output_lock(tmp_path / "unused"):
        pass
    assert not (tmp_path / "unused").exists()


def test_outputs_are_kept_apart_from_inputs(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"x")
    check_apart(tmp_path / "out", input_folders=[images], input_files=[images / "a.png"])  # beside: fine
    check_apart(images / "masks", input_folders=[images])  # a sub-folder is not read with its parent's images
    with pytest.raises(PixelwiseError, match=r"images: OUT would write into .*images, a folder the inputs are read"):
        check_apart(images / ".." / "images", input_folders=[images], flag="OUT")
    with pytest.raises(PixelwiseError, match=r"a\.png: an input would be replaced by an output"):
        check_apart(tmp_path, input_files=[images / "a.png"], targets=[tmp_path / "images" / "a.png"])


def test_staged_entries_replace_a_folders_own_entries_only_on_success(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("old report")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "stale.png").write_text("an earlier run's")
    (tmp_path / ".old.1234.tmp").write_text("left by a killed run")
    with pytest.raises(RuntimeError), staged_entries(tmp_path, {"report.md", "examples"}) as stage:
        (stage / "report.md").write_text("half a new report")
        raise RuntimeError("the run failed")
    assert (tmp_path / "report.md").read_text() == "old report"
    assert sorted(entry.name for entry in folder_entries(tmp_path)) == ["examples", "report.md"]
    with staged_entries(tmp_path, {"report.md", "examples"}) as stage:
        (stage / "report.md").write_text("new report")
    assert (tmp_path / "report.md").read_text() == "new report"
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["report.md"]  # stale examples and leftovers gone
