"""32 clients at once against one real server (uvicorn on 127.0.0.1): bounded in count and time.

One slot and a queue of four hold 5 requests; the rest must be refused with 503 + Retry-After, never
dropped, never a broken connection. Every 200 is one inference and every request gets one answer. Memory
after the storm stays within ``MEMORY_BOUND`` of memory before it (after a warm-up, both after a GC).
"""

from __future__ import annotations

import gc
import http.client
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

from pixelwise.serve import Settings, create_app
from pixelwise.serve.server import running_server

CLIENTS = 32
REQUESTS_PER_CLIENT = 4
TIME_LIMIT = 60.0  # seconds for the whole storm; a few on an idle machine
# the process's resident memory may grow this much: allocator arenas of 32 client threads and of the worker
# thread keep some memory for reuse, but an image per request (≈1 MB here) must not pile up
MEMORY_BOUND = 64 * 1024 * 1024


def resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class CountingPredictor:
    """The tiny predictor, counting the inferences it runs (the warm-up included)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.classes, self.in_channels = inner.classes, inner.in_channels
        self.tile_size, self.overlap, self.tta = inner.tile_size, inner.overlap, inner.tta
        self.calls = 0
        self._lock = threading.Lock()

    def predict_labels(self, image: np.ndarray, *, progress: Any = None) -> np.ndarray:
        with self._lock:
            self.calls += 1
        return self.inner.predict_labels(image, progress=progress)  # type: ignore[no-any-return]


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="load.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc (Linux)")
def test_32_clients_get_200_or_503_and_nothing_is_lost(predictor, encode_png) -> None:  # type: ignore[no-untyped-def]
    counting = CountingPredictor(predictor)
    app = create_app(counting, Settings(slots=1, queue=4))
    image = np.random.default_rng(0).integers(0, 256, (192, 256, 3), dtype=np.uint8)  # 12 tiles: ~ tens of ms
    body, content_type = multipart(encode_png(image))
    with running_server(app) as url:
        address = urlparse(url)

        def request(connection: http.client.HTTPConnection) -> tuple[int, str | None]:
            connection.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
            answer = connection.getresponse()
            answer.read()
            return answer.status, answer.getheader("Retry-After")

        # warm-up: imports, first allocations, the thread pool, so that they do not count as growth
        warm = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        while request(warm)[0] != 200 or counting.calls < 4:
            time.sleep(0.01)
        warm.close()
        before_calls = counting.calls
        gc.collect()
        memory_before = resident_bytes()

        results: list[list[Any]] = [[] for _ in range(CLIENTS)]
        start = threading.Barrier(CLIENTS)

        def client(index: int) -> None:
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=TIME_LIMIT)
            start.wait()
            for _ in range(REQUESTS_PER_CLIENT):
                try:
                    results[index].append(request(connection))
                except Exception as error:  # a broken or refused connection is what this test looks for
                    results[index].append(error)
                    connection.close()
                    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=TIME_LIMIT)
            connection.close()

        began = time.monotonic()
        threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIME_LIMIT)
        seconds = time.monotonic() - began
        assert not any(thread.is_alive() for thread in threads), f"clients still waiting after {TIME_LIMIT} s"

    answers = [answer for per_client in results for answer in per_client]
    errors = [answer for answer in answers if isinstance(answer, Exception)]
    assert errors == []
    assert len(answers) == CLIENTS * REQUESTS_PER_CLIENT  # nothing lost
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 503}
    ok, busy = statuses.count(200), statuses.count(503)
    assert ok >= 1 and busy >= 1, f"{ok} × 200, {busy} × 503: the storm should fill the queue"
    assert all(retry is not None and int(retry) >= 1 for status, retry in answers if status == 503)
    assert counting.calls - before_calls == ok  # one inference per 200, none for a 503
    assert seconds < TIME_LIMIT

    gc.collect()
    growth = resident_bytes() - memory_before
    assert growth <= MEMORY_BOUND, f"resident memory grew {growth / 2**20:.0f} MiB under load"
    print(f"{ok} × 200, {busy} × 503 in {seconds:.1f} s; memory {growth / 2**20:+.1f} MiB")
