"""The public API of ``import pixelwise``: lazy, complete, and every name one stable object."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

import pixelwise as pw
from pixelwise.comparison import Method
from pixelwise.data.builtin import export_builtin


def top_level_modules() -> set[str]:
    return {info.name for info in pkgutil.iter_modules(pw.__path__)}


def test_no_public_name_is_also_a_module_name() -> None:
    modules = top_level_modules()
    subpackages = {name for name in pw.__all__ if isinstance(getattr(pw, name), types.ModuleType)}
    assert subpackages <= modules
    names = set(pw.__all__) - subpackages - {"__version__"}
    assert names and not names & modules, names & modules


def test_every_public_name_resolves_to_the_object_its_module_defines() -> None:
    for name in pw.__all__:
        value = getattr(pw, name)
        assert value is getattr(pw, name), name
        if not isinstance(value, types.ModuleType) and name != "__version__":
            assert value.__name__ == name and value.__module__.startswith("pixelwise."), name
    assert set(dir(pw)) >= set(pw.__all__) - {"__version__"}


class Constant(Method):
    name, family, description = "zero", "classical", "every pixel class 0"

    def fit(self, train, val, out_dir) -> None:  # type: ignore[no-untyped-def]
        self.train_images = len(train)

    def predict(self, image: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
        return np.zeros(image.shape[:2], np.uint8)


def test_compare_is_one_stable_function(tmp_path: Path) -> None:
    # the function and its package have different names: looking one up, calling it and importing every
    # module of the package leave pw.compare the same function
    first = pw.compare
    assert callable(first) and not isinstance(first, types.ModuleType)
    data = export_builtin("shapes", tmp_path / "shapes", size=16, count=3)
    results = pw.compare(
        data, methods=[Constant()], out_dir=tmp_path / "out", noise=[], report=False, progress=False
    ).to_dict()
    assert [method["name"] for method in results["methods"]] == ["zero"]
    assert pw.compare is first
    import pixelwise.comparison
    import pixelwise.comparison.run

    assert pw.compare is first and pw.compare is pw.compare
    assert pixelwise.comparison.compare is first


def test_import_pixelwise_loads_no_torch() -> None:
    code = "import sys, pixelwise; pixelwise.SegmentationFolder; pixelwise.compare; print('torch' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"


def test_every_package_star_imports_what_its_all_names() -> None:
    packages = ["pixelwise"] + [info.name for info in pkgutil.walk_packages(pw.__path__, "pixelwise.") if info.ispkg]
    assert "pixelwise.comparison" in packages and "pixelwise.data.builtin" in packages
    for package in packages:
        namespace: dict[str, object] = {}
        exec(f"from {package} import *", namespace)
        module = sys.modules[package]
        assert set(getattr(module, "__all__", [])) <= namespace.keys(), package


def test_type_checkers_see_the_lazy_api_typed(tmp_path: Path) -> None:
    """The lazy names come with their types (``__init__.pyi``): mypy sees ``pw.Predictor.load``, not Any."""
    from mypy import api

    snippet = tmp_path / "use.py"
    snippet.write_text(
        "import pixelwise as pw\n"
        "from pixelwise.inference import RUNTIMES\n"
        "from pixelwise.models import create_model\n"
        "reveal_type(pw.Predictor.load)\n"
        "reveal_type(pw.ClassSpec.default(2).num_classes)\n"
        "reveal_type(create_model)\n"
        "pw.Predictor.load(3)\n"
    )
    stdout, _, status = api.run([str(snippet), "--no-error-summary", "--cache-dir", str(tmp_path / "cache")])
    revealed = [line for line in stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == 3 and not any('"Any"' in line for line in revealed), stdout
    assert "-> pixelwise.inference.predictor.Predictor" in revealed[0], revealed[0]
    assert revealed[1].endswith('Revealed type is "builtins.int"') or revealed[1].endswith('Revealed type is "int"')
    assert status == 1 and 'Argument 1 to "load" of "Predictor" has incompatible type "int"' in stdout, stdout
