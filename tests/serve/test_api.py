"""The HTTP API through FastAPI's test client: every endpoint, every format, the JSON schema, the limits."""

from __future__ import annotations

import base64
import io
import logging
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixelwise.data.builtin.quokka import QUOKKA_CLASSES
from pixelwise.data.io import overlay, read_image
from pixelwise.serve import Settings, create_app
from pixelwise.serve.schema import ModelInfo, Prediction

QUOKKA = Path(__file__).resolve().parents[2] / "src/pixelwise/assets/quokka/quokka.jpg"


def post(client: TestClient, data: bytes, name: str = "photo.jpg", **query: Any) -> Any:
    return client.post("/predict", params=query, files={"image": (name, data, "application/octet-stream")})


def labels_of(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "P"
        return np.asarray(image)


class GatedPredictor:
    """A predictor without a network that holds every prediction (but the warm-up) until ``gate`` opens."""

    def __init__(self, *, fail_warm_up: bool = False, error: Exception | None = None) -> None:
        self.classes = QUOKKA_CLASSES
        self.in_channels = 3
        self.tile_size = 64
        self.overlap = 0.5
        self.tta = False
        self.gate = threading.Event()
        self.started = threading.Event()
        self.warm_up_gate = threading.Event()
        self.warm_up_gate.set()
        self.fail_warm_up = fail_warm_up
        self.error = error

    def predict_labels(self, image: np.ndarray, *, progress: Any = None) -> np.ndarray:
        if image.shape[:2] == (64, 64):  # the warm-up
            assert self.warm_up_gate.wait(30)
            if self.fail_warm_up:
                raise RuntimeError("weights missing")
        else:
            self.started.set()
            assert self.gate.wait(30)
            if self.error is not None:
                raise self.error
        return (image[:, :, 0] > 0.5).astype(np.uint8)


def test_health_readiness_and_model(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    info = ModelInfo.model_validate(client.get("/model").json())
    assert [item.name for item in info.classes] == ["background", "quokka"]
    assert [item.color for item in info.classes] == [(0, 0, 0), (255, 128, 0)]
    assert (info.name, info.backend, info.in_channels, info.tile_size, info.overlap, info.tta) == (
        "tiny.pt",
        "torch",
        3,
        64,
        0.5,
        False,
    )
    assert info.limits.max_upload_bytes == 2 * 1024 * 1024
    assert info.limits.max_pixels == 1_000_000


def test_readyz_waits_for_the_warm_up_and_reports_its_failure() -> None:
    gated = GatedPredictor()
    gated.warm_up_gate.clear()
    with TestClient(create_app(gated)) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"error": "not ready: warming up"}
        assert client.get("/healthz").status_code == 200  # alive while not ready
        gated.warm_up_gate.set()
        wait = 0
        while client.get("/readyz").status_code != 200 and wait < 1000:
            wait += 1
        assert client.get("/readyz").status_code == 200

    with TestClient(create_app(GatedPredictor(fail_warm_up=True))) as client:
        for _ in range(1000):
            answer = client.get("/readyz")
            if answer.json()["error"] != "not ready: warming up":
                break
        assert answer.status_code == 503
        assert answer.json() == {
            "error": "not ready: the model failed its warm-up prediction (RuntimeError: weights missing)"
        }


def test_the_default_answer_is_the_palette_mask_the_library_predicts(client: TestClient, predictor) -> None:  # type: ignore[no-untyped-def]
    answer = post(client, QUOKKA.read_bytes())
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["content-disposition"] == 'inline; filename="photo_mask.png"'
    assert set(re.findall(r"(\w+);dur=", answer.headers["server-timing"])) == {"queued", "decode", "predict", "encode"}
    expected = predictor.predict_labels(read_image(QUOKKA))
    with Image.open(io.BytesIO(answer.content)) as mask:
        assert mask.size == (960, 643)  # the image's own size
        palette = np.asarray(mask.getpalette()[:6]).reshape(2, 3)
        np.testing.assert_array_equal(np.asarray(mask), expected)
    np.testing.assert_array_equal(palette, np.asarray(QUOKKA_CLASSES.colors))


def test_overlay_format_is_the_overlay_of_the_data_layer(client: TestClient, predictor) -> None:  # type: ignore[no-untyped-def]
    answer = post(client, QUOKKA.read_bytes(), format="overlay")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    image = read_image(QUOKKA)
    with Image.open(io.BytesIO(answer.content)) as picture:
        assert picture.mode == "RGB"
        np.testing.assert_array_equal(
            np.asarray(picture), overlay(image, predictor.predict_labels(image), QUOKKA_CLASSES)
        )


def test_json_format_schema_counts_and_mask(client: TestClient, predictor) -> None:  # type: ignore[no-untyped-def]
    answer = post(client, QUOKKA.read_bytes(), format="json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {
        "width",
        "height",
        "classes",
        "mask_png",
        "overlay_png",
        "tile_size",
        "overlap",
        "tta",
        "seconds",
    }
    result = Prediction.model_validate(body)
    assert (result.width, result.height) == (960, 643)
    assert result.overlay_png is None
    assert set(body["seconds"]) == {"queued", "decode", "predict", "encode"}
    assert all(value >= 0 for value in body["seconds"].values())
    labels = labels_of(base64.b64decode(result.mask_png))
    np.testing.assert_array_equal(labels, predictor.predict_labels(read_image(QUOKKA)))
    assert [(area.index, area.name, area.color) for area in result.classes] == [
        (0, "background", (0, 0, 0)),
        (1, "quokka", (255, 128, 0)),
    ]
    assert [area.pixels for area in result.classes] == np.bincount(labels.ravel(), minlength=2).tolist()
    assert sum(area.pixels for area in result.classes) == 960 * 643
    assert sum(area.percent for area in result.classes) == pytest.approx(100, abs=1e-3)
    with_overlay = Prediction.model_validate(post(client, QUOKKA.read_bytes(), format="json", overlay="true").json())
    assert with_overlay.overlay_png is not None
    with Image.open(io.BytesIO(base64.b64decode(with_overlay.overlay_png))) as picture:
        assert picture.size == (960, 643) and picture.mode == "RGB"


def test_tiling_options_apply_to_one_request_only(client: TestClient, predictor, rgb_png: bytes) -> None:  # type: ignore[no-untyped-def]
    body = post(client, rgb_png, format="json", tile=32, overlap=0.25, tta="true").json()
    assert (body["tile_size"], body["overlap"], body["tta"]) == (32, 0.25, True)
    # the shared predictor is untouched: other requests (other slots) use it at the same time
    assert (predictor.tile_size, predictor.overlap, predictor.tta) == (64, 0.5, False)
    body = post(client, rgb_png, format="json").json()
    assert (body["tile_size"], body["overlap"], body["tta"]) == (64, 0.5, False)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"tile": 16}, "query parameter 'tile': Input should be greater than or equal to 32"),
        ({"tile": 4096}, "query parameter 'tile': Input should be less than or equal to 1024"),
        ({"tile": "big"}, "query parameter 'tile': Input should be a valid integer"),
        ({"overlap": 0.9}, "query parameter 'overlap': Input should be less than or equal to 0.75"),
        ({"format": "gif"}, "query parameter 'format': Input should be 'mask', 'overlay' or 'json'"),
        ({"tta": "maybe"}, "query parameter 'tta': Input should be a valid boolean"),
    ],
)
def test_parameters_out_of_range_are_422_naming_them(
    client: TestClient, rgb_png: bytes, query: dict[str, Any], words: str
) -> None:
    answer = post(client, rgb_png, **query)
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(words)


def test_unknown_paths_and_methods_answer_json(client: TestClient) -> None:
    missing = client.get("/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no such page: /nothing; the API is described at /openapi.json"}
    wrong = client.get("/predict")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "GET is not allowed on /predict; see /openapi.json"}
    # Swagger UI needs a CDN: off, so that nothing the service offers is broken offline
    assert client.get("/docs").status_code == 404


def test_openapi_describes_the_endpoints_and_the_upload(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/healthz", "/readyz", "/model", "/predict"}
    operation = schema["paths"]["/predict"]["post"]
    upload = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    form = schema["components"]["schemas"][upload["$ref"].rsplit("/", 1)[1]]
    assert form["required"] == ["image"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert set(parameters) == {"format", "tile", "overlap", "tta", "overlay"}
    assert parameters["format"]["schema"]["enum"] == ["mask", "overlay", "json"]
    assert {"200", "413", "415", "422", "503"} <= set(operation["responses"])
    assert "image/png" in operation["responses"]["200"]["content"]
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["error"]


def test_the_page_is_self_contained(client: TestClient) -> None:
    answer = client.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert "/*STYLE*/" not in page and "/*SCRIPT*/" not in page  # CSS and script are inlined
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", page), "the page refers to another host"
    assert "@import" not in page and "url(http" not in page
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+';", policy)


def test_503_with_retry_after_when_every_slot_is_busy(encode_png) -> None:  # type: ignore[no-untyped-def]
    gated = GatedPredictor()
    app = create_app(gated, Settings(slots=1, queue=0))
    image = encode_png(np.zeros((20, 30, 3), np.uint8))
    with TestClient(app) as client:
        while client.get("/readyz").status_code != 200:
            pass
        first: list[Any] = []
        worker = threading.Thread(target=lambda: first.append(post(client, image, "a.png")))
        worker.start()
        assert gated.started.wait(30)
        refused = post(client, image, "b.png")
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"].startswith("every inference slot is busy and the queue is full; retry in ")
        gated.gate.set()
        worker.join(30)
        assert first[0].status_code == 200
        assert post(client, image, "c.png").status_code == 200  # the slot is free again


def test_a_failing_model_is_a_500_without_traceback_and_one_log_line(
    encode_png, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    gated = GatedPredictor(error=RuntimeError("CUDA out of memory\nwith a second line"))
    gated.gate.set()
    with TestClient(create_app(gated)) as client, caplog.at_level(logging.INFO, logger="pixelwise.serve"):
        answer = post(client, encode_png(np.zeros((20, 30, 3), np.uint8)), "a.png")
    assert answer.status_code == 500
    assert answer.json() == {"error": "the prediction failed inside the server; the server's log says why"}
    lines = [record.getMessage() for record in caplog.records if record.name == "pixelwise.serve"]
    assert lines == ["POST /predict 500: a.png: RuntimeError: CUDA out of memory"]


def test_the_service_imports_no_torch(tmp_path: Path) -> None:
    """With a predictor that needs no PyTorch (an ONNX one later), serving must not import it."""
    script = """
import io, sys
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from pixelwise.data.classes import ClassSpec
from pixelwise.serve import create_app

class Threshold:
    classes = ClassSpec.default(2)
    in_channels, tile_size, overlap, tta = 1, 64, 0.5, False
    def predict_labels(self, image, progress=None):
        return (image[:, :, 0] > 0.5).astype(np.uint8)

buffer = io.BytesIO()
Image.fromarray(np.full((8, 8), 200, np.uint8)).save(buffer, format="PNG")
with TestClient(create_app(Threshold())) as client:
    answer = client.post("/predict?format=json", files={"image": ("a.png", buffer.getvalue())})
    page = client.get("/")
print(answer.status_code, answer.json()["classes"][1]["pixels"], page.status_code, "torch" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.stdout.split() == ["200", "64", "200", "False"], result.stderr[-2000:]


def test_settings_refuse_nonsense() -> None:
    from pixelwise.errors import PixelwiseError

    with pytest.raises(PixelwiseError, match="--slots must be at least 1, got 0"):
        Settings(slots=0)
    with pytest.raises(PixelwiseError, match="--max-upload-mb must be positive"):
        Settings(max_upload_mb=0)
    assert Settings(queue=0).queue == 0  # no waiting room: refuse as soon as the slots are busy


def test_every_get_answers_head_without_a_body(predictor) -> None:  # type: ignore[no-untyped-def]
    """Over a real server (uvicorn drops a HEAD answer's body; the test client would not show it)."""
    import http.client
    from urllib.parse import urlparse

    from pixelwise.serve.server import running_server

    with running_server(create_app(predictor)) as url:
        address = urlparse(url)
        for path in ("/", "/healthz", "/readyz", "/model"):
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
            connection.request("GET", path)
            got = connection.getresponse()
            body = got.read()
            connection.request("HEAD", path)
            head = connection.getresponse()
            assert head.read() == b""
            connection.close()
            assert head.status == 200 or (path == "/readyz" and head.status == got.status), path
            assert head.getheader("content-type") == got.getheader("content-type")
            assert body, path  # GET has the body that HEAD leaves out


def test_a_method_not_allowed_lists_every_method_of_the_path(client: TestClient) -> None:
    answer = client.post("/healthz")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"
    assert client.put("/predict").headers["allow"] == "POST"


def test_form_fields_other_than_the_image_are_refused_naming_them(client: TestClient, rgb_png: bytes) -> None:
    """``-F format=json`` (a query parameter sent as a form field) would be ignored: the answer says where it goes."""
    answer = client.post("/predict", files={"image": ("a.png", rgb_png)}, data={"format": "json", "note": "x"})
    assert answer.status_code == 422
    assert answer.json() == {
        "error": "/predict takes no form field 'format', 'note', only the image as 'image'; format is a query "
        "parameter (/predict?format=...); send the image alone (curl -F image=@photo.png)"
    }


def test_a_text_field_named_image_is_our_own_line(client: TestClient) -> None:
    answer = client.post("/predict", data={"image": "photo.png"})  # curl -F image=photo.png, without the @
    assert answer.status_code == 422
    assert answer.json() == {
        "error": "the form field 'image' holds text, not a file; send the image as the form field 'image' "
        "(curl -F image=@photo.png) — the @ sends the file"
    }


def test_a_body_that_is_no_form_is_400_in_our_words(client: TestClient, rgb_png: bytes) -> None:
    broken = client.post("/predict", content=b"junk", headers={"content-type": "multipart/form-data"})
    assert broken.status_code == 400
    assert broken.json() == {
        "error": "the body could not be read as a form (Missing boundary in multipart); send the image as the "
        "form field 'image' (curl -F image=@photo.png)"
    }
    two = client.post("/predict", files=[("image", ("a.png", rgb_png)), ("image", ("b.png", rgb_png))])
    assert two.status_code == 400
    assert two.json()["error"].startswith("the body could not be read as a form (Too many files. Maximum number")


def test_the_schema_documents_400_and_refuses_an_empty_or_padded_form(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/predict"]["post"]
    assert {"400", "408", "413", "415", "422", "503"} <= set(operation["responses"])
    upload = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["additionalProperties"] is False  # the image and nothing else
    form = schema["components"]["schemas"][upload["$ref"].rsplit("/", 1)[1]]
    assert form["properties"]["image"]["minLength"] == 1  # an empty file is no image: 415, documented
    assert "empty" in operation["responses"]["415"]["description"]
    assert set(schema["paths"]["/healthz"]) == {"get", "head"}


def test_a_failure_outside_predict_is_a_500_in_json(predictor) -> None:  # type: ignore[no-untyped-def]
    app = create_app(predictor)
    with TestClient(app, raise_server_exceptions=False) as client:
        app.state.service.model_info = None  # a bug: /model cannot answer its schema
        answer = client.get("/model")
    assert answer.status_code == 500
    assert answer.json() == {"error": "the server failed on this request; the server's log says why"}
