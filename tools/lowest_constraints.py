"""Print pip constraints that pin every runtime dependency of pyproject.toml to its lowest release allowed.

``make lower-bounds`` installs with them into a virtual environment of its own and runs the test suite, so
that a lower bound we state is one we have run: "numpy>=1.24" becomes "numpy==1.24.0", the lowest release
PyPI has at or above the bound (``pip index versions``), for the dependencies and the extras named on the
command line (``python tools/lowest_constraints.py serve onnx``). Exact pins (torch) stay as they are; the
development tools (pytest, ruff, mypy) are left free.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def lowest_release(name: str, bound: Version) -> Version:
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", name], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Available versions: (.*)", listed)
    if match is None:
        raise SystemExit(f"pip index versions {name}: no versions listed")
    releases = [Version(text) for text in match[1].split(", ")]
    candidates = [version for version in releases if version >= bound and not version.is_prerelease]
    if not candidates:
        raise SystemExit(f"{name}: no release at or above {bound}")
    return min(candidates)


def main(extras: list[str]) -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    for text in requirements:
        requirement = Requirement(text)
        if requirement.name == "pixelwise":
            continue
        bounds = [spec for spec in requirement.specifier if spec.operator in (">=", "==")]
        if not bounds:
            continue
        spec = bounds[0]
        version = Version(spec.version) if spec.operator == "==" else lowest_release(requirement.name, Version(spec.version))
        print(f"{requirement.name}=={version}")


if __name__ == "__main__":
    main(sys.argv[1:])
