"""The guard of the install without PyTorch: the README's list is read, and the blocker refuses the rest."""

from __future__ import annotations

import subprocess
import sys


def test_the_blocker_allows_the_readme_list_and_what_it_needs_and_refuses_the_rest(deploy_blocker: str) -> None:
    code = (
        deploy_blocker
        + """
import importlib
for name in ("numpy", "PIL", "tifffile", "yaml", "typer", "click", "tqdm", "lazy_loader", "onnxruntime",
             "fastapi", "uvicorn", "torch", "scipy", "skimage", "sklearn", "matplotlib", "onnx"):
    try:
        importlib.import_module(name)
        print(name, "ok")
    except ImportError:
        print(name, "blocked")
"""
    )
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    found = dict(line.split() for line in lines if line)
    allowed = ("numpy", "PIL", "tifffile", "yaml", "typer", "click", "tqdm", "lazy_loader", "onnxruntime", "fastapi")
    assert {name: found[name] for name in (*allowed, "uvicorn")} == dict.fromkeys((*allowed, "uvicorn"), "ok")
    refused = ("torch", "scipy", "skimage", "sklearn", "matplotlib", "onnx")
    assert {name: found[name] for name in refused} == dict.fromkeys(refused, "blocked")
