"""Shared fixtures: run the `pixelwise` command in-process, as a user would from the shell."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path) -> CliResult:
    """Run ``pixelwise ARGS`` through the real entry point (its error handling included), in this process."""
    from pixelwise.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    saved = sys.argv
    sys.argv = ["pixelwise", *map(str, args)]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = saved
    return CliResult(code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> Iterator[None]:
    """One torch thread per test process: on two cores shared with other jobs, more threads oversubscribe
    and a small forward pass can stall ten times over; on a quiet machine the tiny tensors lose little."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """``cli("evaluate", pred_dir, truth_dir)`` -> CliResult(returncode, stdout, stderr)."""
    return run_cli
