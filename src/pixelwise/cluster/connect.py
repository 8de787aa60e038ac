"""The client's side of a cluster: connecting to a running one, or starting a ``LocalCluster`` here."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from distributed import Client, LocalCluster

from pixelwise.cluster.executor import DaskExecutor
from pixelwise.cluster.worker import usable_cores
from pixelwise.errors import PixelwiseError

CONNECT_TIMEOUT = 5.0  # seconds to reach a scheduler before saying it cannot be reached
SCHEDULER_FILE_WAIT = 30.0  # seconds for a scheduler file to appear


@contextlib.contextmanager
def open_cluster(
    *, address: str | None = None, workers: int | None = None, threads: int | None = None, quiet: bool = False
) -> Iterator[DaskExecutor]:
    """A ``DaskExecutor`` on the cluster at ``address``, or on a new ``LocalCluster`` of ``workers`` processes
    (closed again at the end). ``threads``: runtime threads per image (see the module). One line (a
    PixelwiseError) when the scheduler cannot be reached within ``CONNECT_TIMEOUT`` seconds."""
    if (address is None) == (workers is None):
        raise PixelwiseError("give either --cluster ADDRESS or --workers N, not both")
    logger = logging.getLogger("distributed")
    level = logger.level
    # our own lines say what matters; Dask's log lines (a worker restarted, a connection retried) would
    # bury them on the terminal
    logger.setLevel(logging.CRITICAL)
    cluster = None
    try:
        if address is not None:
            client = _connect(address)
        else:
            assert workers is not None
            threads = threads or max(1, usable_cores() // workers)
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: the machine may run other clusters
                silence_logs=logging.CRITICAL,
            )
            client = Client(cluster, set_as_default=False)
        try:
            executor = DaskExecutor(
                client, threads=threads, address=address or "the local cluster", remote=address is not None
            )
            if not quiet:
                print(f"note: {executor.describe()}", file=sys.stderr)
            yield executor
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
        logger.setLevel(level)


def _connect(address: str) -> Client:
    """A client of the scheduler at ``address``, or of the one a scheduler file names (``dask scheduler
    --scheduler-file FILE.json``, the way of batch systems: the address is known once the job runs)."""
    given = address
    if address.endswith(".json"):
        address = _address_in(Path(address).expanduser())
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as error:  # a refused or timed-out connection, an unknown scheme, garbage from a non-Dask port
        reason = " ".join(str(error).split()) or type(error).__name__
        raise PixelwiseError(
            f"--cluster {given}: no Dask scheduler answers there ({reason}); start one (dask scheduler) or "
            "check the address"
        ) from None


def _address_in(file: Path) -> str:
    """The address in a scheduler file, waiting ``SCHEDULER_FILE_WAIT`` seconds for it to appear (a batch
    script starts the scheduler and the command together)."""
    deadline = time.monotonic() + SCHEDULER_FILE_WAIT
    while True:
        try:
            return str(json.loads(file.read_text())["address"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)  # not there yet, or being written
        except OSError as error:
            raise PixelwiseError(f"--cluster {file}: cannot read it ({error.strerror})") from None
    raise PixelwiseError(
        f"--cluster {file}: no scheduler file there after {SCHEDULER_FILE_WAIT:.0f} s; start "
        f"dask scheduler --scheduler-file {file}, or check the path"
    )
