"""The schema and the answers agree: schemathesis, every check on, against a real server (bounded: few
examples per operation, a fixed seed, a time limit)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pixelwise.serve import Settings, create_app
from pixelwise.serve.server import running_server

# schemathesis counts any 4xx to a schema-valid request as a fault, but no schema can say "a file that decodes
# as an image": random bytes in the 'image' field are schema-valid and rightly 415 (413, 422 for an image too
# large or the model cannot take; 503 when busy). Every other check runs with its own settings.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "413", "415", "422", "503"]
"""


def test_schemathesis_with_every_check_finds_no_fault(predictor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("schemathesis", reason="the schema test needs schemathesis (the dev extra)")
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    assert command is not None, "schemathesis is importable but its command is not on PATH"
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    app = create_app(predictor, Settings(max_upload_mb=2, max_megapixels=1))
    with running_server(app) as url:
        result = subprocess.run(
            [
                command,
                "--config-file",
                str(tmp_path / "schemathesis.toml"),
                "--no-color",
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "10",
                "--seed",
                "0",
                "--request-timeout",
                "10",
                "--generation-database",
                "none",
            ],
            cwd=tmp_path,  # whatever it keeps, it keeps there
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
