"""`pixelwise serve`: the banner, a working server from a checkpoint, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

QUOKKA = Path(__file__).resolve().parents[2] / "src/pixelwise/assets/quokka/quokka.jpg"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_serve_starts_with_a_banner_and_answers(checkpoint: Path) -> None:
    command = [sys.executable, "-m", "pixelwise", "serve", str(checkpoint), "--port", "0", "--threads", "1", "-q"]
    command += ["--max-windows", "5000", "--header-timeout", "20", "--body-timeout", "15", "--max-connections", "9"]
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline().rstrip("\n")
        match = re.fullmatch(
            r"pixelwise serve: (http://127\.0\.0\.1:\d+) · model (.+) \((?:onnx|torch), 1 slot × 1 thread\) · "
            r"classes: background, quokka",
            banner,
        )
        assert match, banner
        url = match[1]
        assert match[2] == str(checkpoint)
        deadline = time.monotonic() + 60
        while get(f"{url}/readyz")[0] != 200:
            assert time.monotonic() < deadline and server.poll() is None, "the server did not become ready"
            time.sleep(0.1)
        info = json.loads(get(f"{url}/model")[1])
        assert (info["name"], info["threads"], info["tile_size"]) == ("best.pt", 1, 64)
        limits = info["limits"]
        assert (limits["max_windows"], limits["header_timeout"], limits["body_timeout"]) == (5000, 20, 15)
        assert limits["max_connections"] == 9

        boundary = uuid.uuid4().hex
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="quokka.jpg"\r\n\r\n'.encode()
            + QUOKKA.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            f"{url}/predict?format=json",
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            result: dict[str, Any] = json.loads(answer.read())
        assert (result["width"], result["height"]) == (960, 643)
    finally:
        server.send_signal(signal.SIGINT)
        _, errors = server.communicate(timeout=30)
    # Ctrl-C: uvicorn shuts down cleanly, then the command exits as every pixelwise command does on Ctrl-C;
    # with -q nothing was logged: no request line, no error, no traceback
    assert server.returncode == 130, errors
    assert errors == ""


def test_a_port_in_use_is_one_line(cli: Any, checkpoint: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", checkpoint, "--port", port)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"pixelwise: error: cannot listen on 127.0.0.1:{port} (Address already in use); pick another --port or --host"
    )


def test_a_missing_model_is_one_line(cli: Any, tmp_path: Path) -> None:
    result = cli("serve", tmp_path / "nothing.pt")
    assert result.returncode == 2
    assert result.stderr.startswith("pixelwise: error: ") and "nothing.pt" in result.stderr
    assert result.stderr.count("\n") == 1


def test_nonsense_limits_are_refused_before_loading(cli: Any, tmp_path: Path) -> None:
    result = cli("serve", tmp_path / "nothing.pt", "--slots", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == "pixelwise: error: --slots must be at least 1, got 0"
    result = cli("serve", tmp_path / "nothing.pt", "--body-timeout", "0")
    assert result.stderr.strip() == "pixelwise: error: --body-timeout must be positive, got 0.0"
    result = cli("serve", tmp_path / "nothing.pt", "--max-windows", "0")
    assert result.stderr.strip() == "pixelwise: error: --max-windows must be at least 1, got 0"
