"""What one request may cost: the budget of tiles × TTA passes (refused before it takes a slot), work stopped
when its client leaves, and a Retry-After that says how long the work admitted will really take."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixelwise.data.builtin.quokka import QUOKKA_CLASSES
from pixelwise.inference.tiling import tile_grid
from pixelwise.serve import Settings, create_app
from pixelwise.serve.server import running_server

SLACK = 5.0


def post(client: TestClient, data: bytes, name: str = "a.png", **query: Any) -> Any:
    return client.post("/predict", params=query, files={"image": (name, data, "application/octet-stream")})


class PacedPredictor:
    """A predictor without a network that takes ``pace`` seconds per tile, over the tiles the real one would
    run, reporting each through ``progress``; the 64 × 64 warm-up and images narrower than 40 are instant."""

    def __init__(self, pace: float) -> None:
        self.classes = QUOKKA_CLASSES
        self.in_channels, self.tile_size, self.overlap, self.tta = 3, 64, 0.5, False
        self.pace = pace
        self.tiles: list[int] = []  # tiles run, per prediction (shared by the per-request copies)
        self.started = threading.Event()

    def predict_labels(self, image: np.ndarray, *, progress: Any = None) -> np.ndarray:
        height, width = image.shape[:2]
        if (height, width) != (64, 64) and width >= 40:
            self.tiles.append(0)
            self.started.set()
            for _ in tile_grid(height, width, self.tile_size, self.overlap):
                time.sleep(self.pace)
                self.tiles[-1] += 1
                if progress is not None:
                    progress(1)
        return np.zeros((height, width), np.uint8)


def test_tiling_options_over_the_budget_are_422_and_run_nothing(encode_png) -> None:  # type: ignore[no-untyped-def]
    paced = PacedPredictor(pace=0.0)
    image = encode_png(np.zeros((50, 70, 3), np.uint8))
    with TestClient(create_app(paced, Settings(max_windows=50))) as client:
        assert client.get("/model").json()["limits"]["max_windows"] == 50
        assert post(client, image).status_code == 200  # the model's tiling: 2 tiles
        # the probe's request: tile 32 at overlap 0.75 with TTA is 4 × 6 tiles, each 4 times
        answer = post(client, image, tile=32, overlap=0.75, tta="true")
        assert answer.status_code == 422
        assert answer.json() == {
            "error": "a.png: 70 × 50 pixels at tile 32, overlap 0.75 with TTA is 24 tiles × 4 passes = 96, over "
            "the budget of 50 per request; use a larger tile, less overlap or no TTA"
        }
        assert post(client, image, tile=32, overlap=0.75).status_code == 200  # 24 tiles: within
    assert paced.tiles == [2, 24]  # the refused request ran nothing


def test_an_image_over_the_budget_at_the_model_s_own_tiling_is_413(encode_png) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(PacedPredictor(pace=0.0), Settings(max_windows=1))) as client:
        answer = post(client, encode_png(np.zeros((50, 70, 3), np.uint8)), "wide.png")
    assert answer.status_code == 413
    assert answer.json()["error"].endswith(
        "is 2 tiles × 1 passes = 2, over the budget of 1 per request; send a smaller image"
    )


def test_the_default_budget_passes_every_image_at_the_model_s_tiling_and_refuses_the_probe_s(
    client: TestClient, encode_png
) -> None:  # type: ignore[no-untyped-def]
    # the fixture: 1 megapixel at most, tile 64 at overlap 0.5, no TTA: a 1000-pixel side is 31 tiles (one
    # every 32 pixels), 961 tiles of one pass
    assert client.get("/model").json()["limits"]["max_windows"] == 961
    megapixel = encode_png(np.zeros((1000, 1000, 3), np.uint8))
    began = time.monotonic()
    answer = post(client, megapixel, tile=32, overlap=0.75, tta="true")
    assert answer.status_code == 422
    assert "is 14,884 tiles × 4 passes = 59,536, over the budget of 961" in answer.json()["error"]
    assert time.monotonic() - began < SLACK  # refused, not run for minutes
    assert post(client, encode_png(np.zeros((500, 500, 3), np.uint8)), tta="true").status_code == 200  # 225 × 4


def test_a_client_that_leaves_stops_its_work_and_frees_its_place(connect: Any, encode_png, read_answer: Any) -> None:  # type: ignore[no-untyped-def]
    paced = PacedPredictor(pace=0.02)
    app = create_app(paced, Settings(slots=1, queue=1))
    slow = encode_png(np.zeros((600, 600, 3), np.uint8))  # 18 × 18 tiles of 20 ms: 6.5 s
    fast = encode_png(np.zeros((20, 30, 3), np.uint8))

    def request(data: bytes) -> bytes:
        body = (
            b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n' + data + b"\r\n--b--\r\n"
        )
        head = b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)

    with running_server(app) as url:
        running = connect(url)
        running.sendall(request(slow))
        assert paced.started.wait(SLACK)
        waiting = connect(url)
        waiting.sendall(request(slow))  # queued behind the first
        time.sleep(0.2)
        waiting.close()  # both clients leave
        running.close()
        began = time.monotonic()
        with connect(url) as third:  # the slot is free again long before the 6.5 s of the first
            third.sendall(request(fast))
            head, _ = read_answer(third)
        assert head.startswith("HTTP/1.1 200 ")
        assert time.monotonic() - began < SLACK
    assert len(paced.tiles) == 1  # the waiting request never ran
    assert paced.tiles[0] < 18 * 18 / 2  # the running one stopped after its current tile


def test_retry_after_is_the_time_the_work_admitted_still_takes(encode_png) -> None:  # type: ignore[no-untyped-def]
    paced = PacedPredictor(pace=0.1)
    image = encode_png(np.zeros((200, 200, 3), np.uint8))  # 6 × 6 tiles of 0.1 s: 3.6 s
    with TestClient(create_app(paced, Settings(slots=1, queue=0))) as client:
        while client.get("/readyz").status_code != 200:
            time.sleep(0.01)
        first: list[Any] = []
        worker = threading.Thread(target=lambda: first.append(post(client, image)))
        worker.start()
        assert paced.started.wait(SLACK)
        time.sleep(1.0)  # about 10 of its 36 tiles done
        refused = post(client, image, "b.png")
        asked = time.monotonic()
        worker.join(30)
        really = time.monotonic() - asked
    assert refused.status_code == 503 and first[0].status_code == 200
    retry_after = int(refused.headers["retry-after"])
    # the rest of the running prediction at its own pace, rounded up: not the 1 s of a fresh estimate
    assert really - 1.5 <= retry_after <= really + 1.5, (retry_after, really)
    assert retry_after >= 2


@pytest.mark.parametrize("format", ["mask", "json"])
def test_a_prediction_reports_its_progress_to_the_slot(client: TestClient, rgb_png: bytes, format: str) -> None:
    """The real predictor's progress callback is wired: a normal request passes through it untroubled."""
    assert post(client, rgb_png, format=format).status_code == 200


def test_a_request_cancelled_by_a_shutdown_stops_its_prediction() -> None:
    """Ctrl-C cancels the requests still running after uvicorn's grace period: their predictions stop at the
    next tile rather than hold the shutdown for as long as they would have run."""
    import anyio

    from pixelwise.serve.predict import run_watched
    from pixelwise.serve.slots import InferenceSlots, Job, JobCancelled

    class Connected:  # a client that stays: its connection never says anything more
        async def receive(self) -> dict[str, Any]:
            await anyio.sleep_forever()
            raise AssertionError

    tiles: list[int] = []

    def predict(job: Job) -> None:
        for tile in range(500):
            time.sleep(0.01)
            tiles.append(tile)
            job.tiles_done(1)

    async def main() -> float:
        slots = InferenceSlots(slots=1, queue=0)
        job = Job(cost=500, windows=500)
        with anyio.move_on_after(0.2), contextlib.suppress(JobCancelled):  # the shutdown's cancellation
            await run_watched(Connected(), job, lambda: slots.run(job, predict, job))  # type: ignore[arg-type]
        assert job.cancelled
        return time.monotonic()

    began = time.monotonic()
    ended = anyio.run(main)
    assert ended - began < 2.0  # not the 5 s of the 500 tiles
    assert len(tiles) < 100
