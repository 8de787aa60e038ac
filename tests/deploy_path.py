"""The deploy path's contract: the packages the README's "Install without PyTorch" lists, and a blocker that
refuses every other import, so that a test fails when the ONNX path starts to need something new.

``deploy_packages()`` reads the ``pip install "numpy>=..." ...`` lines that follow ``pip install --no-deps
pixelwise`` in the README; ``BLOCKER`` (Python source, run first in a subprocess) allows the standard
library, pixelwise, those distributions and what they require in turn (their installed metadata, markers
evaluated), and raises ModuleNotFoundError for a module of any other installed distribution, as if it were
not installed.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def deploy_packages() -> list[str]:
    """The distribution names the README installs after ``pip install --no-deps pixelwise``."""
    text = README.read_text()
    block = text[text.index("pip install --no-deps pixelwise") :].split("```", 1)[0]
    return [match[1] for match in re.finditer(r'"([A-Za-z0-9_.-]+)[<>=!~]', block)]


BLOCKER = """
import importlib.abc, importlib.metadata, sys
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

def _closure(names):
    seen, todo = set(), [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen

ALLOWED = _closure(DEPLOY)
PROVIDERS = importlib.metadata.packages_distributions()

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "pixelwise" or top.startswith("_"):
            return None
        providers = {canonicalize_name(d) for d in PROVIDERS.get(top, [])}
        if providers and not providers & ALLOWED:
            # as if it were not installed, which is what optional imports in the allowed packages expect
            raise ModuleNotFoundError(f"{name} is blocked: the deploy path installs only {sorted(DEPLOY)}")
        return None

sys.meta_path.insert(0, Blocker())
"""


def blocker_source(*test_tools: str) -> str:
    """Python source that installs the blocker for the README's deploy packages (and ``test_tools``, which
    the test itself needs, e.g. the HTTP client of FastAPI's TestClient)."""
    return f"DEPLOY = {[*deploy_packages(), *test_tools]!r}\n" + BLOCKER
