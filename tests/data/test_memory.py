"""The memory guard: the tightest of available memory, a container's limit and the process limits (ulimit -v,
ulimit -d), and one line for a MemoryError (issue 19, item 5)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import numpy as np
import pytest

from pixelwise.data import memory
from pixelwise.errors import InputError

GIB = 1024**3


def _under_limit(code: str, *, kind: int, limit: int) -> str:
    """stdout of ``python -c code`` run under the soft and hard process limit ``kind`` (a real one)."""

    def limited() -> None:
        resource.setrlimit(kind, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limited,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OPENBLAS_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the process limits are Linux's")
@pytest.mark.parametrize(
    ("kind", "said"), [(resource.RLIMIT_AS, "ulimit -v"), (resource.RLIMIT_DATA, "ulimit -d")], ids=["as", "data"]
)
def test_a_process_limit_bounds_the_room(kind: int, said: str) -> None:
    code = "from pixelwise.data.memory import memory_room; room = memory_room(); print(room.bytes, room.said())"
    size, text = _under_limit(code, kind=kind, limit=GIB).split(maxsplit=1)
    # what the process has mapped already is taken off the limit
    assert 0 < int(size) < GIB and said in text, text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the process limits are Linux's")
def test_an_image_over_the_address_space_limit_is_refused_with_the_limit() -> None:
    code = (
        "from pixelwise.data.memory import check_fits\n"
        "try:\n"
        "    check_fits('scan.png', 'a 30000 x 30000 grey image of 8-bit values', 30000 * 30000 * 5)\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    line = _under_limit(code, kind=resource.RLIMIT_AS, limit=GIB)
    assert line.startswith("InputError scan.png: a 30000 x 30000 grey image of 8-bit values needs about 4.2 GB")
    assert "the address-space limit (ulimit -v) leaves" in line and "raise the limit (ulimit -v)" in line


def test_the_tightest_bound_is_the_room(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_meminfo_available", lambda: 8 * GIB)
    monkeypatch.setattr(memory, "_cgroup_room", lambda: 4 * GIB)
    monkeypatch.setattr(memory, "_rlimit_rooms", lambda: [memory.Room(2 * GIB, "the limit leaves {}", "raise it")])
    room = memory.memory_room()
    assert room is not None and room.bytes == 2 * GIB and room.said() == "the limit leaves 2.0 GB"
    with pytest.raises(InputError, match=r"a\.png: an image needs about 1\.9 GB .* the limit leaves 2\.0 GB; raise it"):
        memory.check_fits("a.png", "an image", 2 * GIB - 100 * 1024**2)  # over 80 % of the room


def test_a_numpy_memory_error_is_one_line_with_the_size_that_did_not_fit() -> None:
    with pytest.raises(MemoryError) as caught:
        np.empty((2**40, 2**20), np.float32)  # 4 EB: never there
    line = memory.memory_error_line(caught.value, "scans/a.png")
    assert line.startswith("scans/a.png: not enough memory to process it (an array of ")
    assert "1099511627776 x 1048576 float32) did not fit" in line and "\n" not in line
    # with no file known (the command line's last resort) it still says the size
    assert memory.memory_error_line(caught.value).startswith("not enough memory (an array of ")


def test_pytorch_s_allocation_failure_is_one_line_too() -> None:
    # PyTorch's CPU allocator raises a RuntimeError, not a MemoryError, when an allocation fails
    error = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
        "allocate 40000000000 bytes. Error code 12 (Cannot allocate memory)"
    )
    assert memory.out_of_memory(error) and memory.out_of_memory(MemoryError())
    assert not memory.out_of_memory(RuntimeError("shapes do not match"))
    line = memory.memory_error_line(error, "a.png")
    assert line.startswith("a.png: not enough memory to process it (37.3 GB more were needed at once; ")
    assert "enforce" not in line
