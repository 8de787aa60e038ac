"""Work spread over the workers of a Dask cluster: a job's images as tasks (``pixelwise[cluster]``).

``open_cluster(address=...)`` connects to a running cluster through its scheduler (``tcp://host:8786``);
``open_cluster(workers=N)`` starts a ``LocalCluster`` of N worker processes on this machine. Either gives a
``DaskExecutor``, the ``jobs.Executor`` of a cluster:

- the job goes to each worker once, as a ``WorkerPlugin`` (sinks, classes, the task); a task with a
  ``prepare(threads=)`` method (the predictor's) loads its model there, once per worker, off the worker's
  event loop. Each image is one Dask task running ``jobs.process_item``, which writes straight into OUT
  through the sinks, atomically: the workers must see the inputs and OUT at the same paths (a shared file
  system; paths are made absolute before they travel).
- This process, the client, holds OUT's lock (a second client on the same OUT is refused) and appends each
  finished image to the job's record as its result comes back, so a rerun after the client was killed does
  only the rest. A worker that dies mid-image leaves a temporary file at most (removed at the end of the
  run) and the scheduler gives the image to another worker; an image that kills every worker it meets
  (Dask's ``allowed-failures``, 3 by default) fails alone, as a MemoryError does in one process.
- ``map`` runs any function over items the same way, giving results as they finish (evaluate's per-image
  confusion matrices, reduced by the client).

Threads: ``--workers N`` makes N single-task workers whose runtimes get ``threads`` each (default: this
machine's cores over N), so workers × threads fit the cores. On a cluster, a worker runs as many images
at once as its Dask threads, each with ``threads`` runtime threads (default: its machine's cores over the
Dask threads of the workers there). A few tasks per Dask thread are submitted ahead
(``executor.IN_FLIGHT_PER_THREAD``), so a folder of millions of images never becomes millions of futures.

The parts: ``connect`` (the client: ``open_cluster``), ``executor`` (``DaskExecutor``, ``score_pairs``),
``worker`` (what runs on the workers: the job's plugin, the tasks, warnings turned into notes).

Bands of one gigapixel image are not tasks yet: the out-of-core path (``Predictor.stream(start_row=)``
with a sink that takes bands out of order, by region) would make each band of rows one task of an
``Item``, its outcome recorded per band, the image recorded when all its bands are.
"""

from __future__ import annotations

from pixelwise.errors import PixelwiseError

try:
    import distributed  # noqa: F401  (the extra's one package)
except ImportError as error:  # the extra is missing: said in one line by the command
    raise PixelwiseError("--cluster and --workers need Dask distributed: pip install 'pixelwise[cluster]'") from error

from pixelwise.cluster.connect import open_cluster
from pixelwise.cluster.executor import DaskExecutor, score_pairs

__all__ = ["DaskExecutor", "open_cluster", "score_pairs"]
