"""The package's layout: no import cycles, inference without training code or torch, modules of a readable size.

The import graph is read from the source with ``ast``, not by importing: every ``import`` statement counts,
at module level, inside functions (lazy imports) and under ``if TYPE_CHECKING`` alike, since each says
that one part needs another. It is checked at two grains: between the parts of ``pixelwise`` one level
down (each subpackage, ``data``, ``inference``, ``train`` ..., and each top-level module, ``metrics``,
``files``, ``checkpoint`` ...), and between modules, which finds a circle inside one part (``train.trainer``
and ``train.semi`` once called each other). The package root, whose lazy export table names modules as
strings, is a node of neither (everything hangs under it).
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "pixelwise"
MAX_LINES = 450

Edges = dict[str, dict[str, list[str]]]  # part -> imported part -> where ("file:line")


def _module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    return ["pixelwise", *(parts[:-1] if parts[-1] == "__init__" else parts)]


def _module_names() -> set[str]:
    return {".".join(_module_name(path)) for path in SOURCE.rglob("*.py")}


def _imported_modules(path: Path, modules: set[str] | None = None) -> list[tuple[str, int]]:
    """Absolute names of every module ``path`` imports anywhere in its body, with the line.

    ``from package import name`` is the module ``package.name`` when ``modules`` (or, for the package root,
    always) says that is a module, else ``package``.
    """
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name[:-1]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            submodules = [f"{module}.{alias.name}" for alias in node.names]
            if module == "pixelwise":  # from pixelwise import errors: the names are the modules
                found.extend((submodule, node.lineno) for submodule in submodules)
            elif modules is not None and any(submodule in modules for submodule in submodules):
                found.extend((sub if sub in modules else module, node.lineno) for sub in submodules)
            else:
                found.append((module, node.lineno))
    return found


def import_graph() -> Edges:
    edges: Edges = defaultdict(lambda: defaultdict(list))
    for path in sorted(SOURCE.rglob("*.py")):
        name = _module_name(path)
        if len(name) < 2:
            continue  # the package root
        for module, line in _imported_modules(path):
            target = module.split(".")
            if target[0] == "pixelwise" and len(target) > 1 and target[1] != name[1]:
                edges[name[1]][target[1]].append(f"{path.relative_to(SOURCE.parent)}:{line}")
    return edges


def module_graph() -> Edges:
    """Module -> the modules of ``pixelwise`` it imports (a package is its ``__init__``), the package root aside."""
    modules = _module_names()
    edges: Edges = defaultdict(lambda: defaultdict(list))
    for path in sorted(SOURCE.rglob("*.py")):
        name = ".".join(_module_name(path))
        if name == "pixelwise":
            continue
        for module, line in _imported_modules(path, modules):
            target = module.split(".")
            while len(target) > 2 and ".".join(target) not in modules:  # import pixelwise.a.b.function
                target.pop()
            imported = ".".join(target)
            if target[0] == "pixelwise" and len(target) > 1 and imported != name:
                edges[name][imported].append(f"{path.relative_to(SOURCE.parent)}:{line}")
    return edges


def find_cycle(edges: Edges) -> list[str] | None:
    """One cycle of parts (first part repeated at the end), or None when the graph is acyclic."""
    state: dict[str, str] = {}  # "active" while on the depth-first path, "done" once fully explored
    path: list[str] = []

    def visit(part: str) -> list[str] | None:
        state[part] = "active"
        path.append(part)
        for target in sorted(edges.get(part, {})):
            if state.get(target) == "active":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[part] = "done"
        return None

    for part in sorted(edges):
        if part not in state and (cycle := visit(part)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b": []}, "b": {"c": []}, "c": {}}) is None
    assert find_cycle({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}}) == ["a", "b", "c", "a"]
    # the reader sees lazy and relative imports
    graph = import_graph()
    assert "inference" in graph["cli"]  # cli/predict.py imports the predictor inside the command
    assert "models" in graph["checkpoint"]  # a function-level import
    modules = module_graph()
    assert "pixelwise.train.semi" in modules["pixelwise.train.trainer"]  # a circle inside one part is seen
    assert "pixelwise.models.registry" in modules["pixelwise.checkpoint"]
    # from a package import its submodule: an edge to the submodule, not to the package's __init__
    assert "pixelwise.data.builtin.shapes" in modules["pixelwise.data.builtin.registry"]
    assert "pixelwise.data.builtin" not in modules["pixelwise.data.builtin.registry"]


def _fail_on_cycle(edges: Edges) -> None:
    cycle = find_cycle(edges)
    if cycle:
        steps = [f"{a} -> {b} ({', '.join(edges[a][b][:2])})" for a, b in itertools.pairwise(cycle)]
        pytest.fail("import cycle: " + "; ".join(steps))


def test_no_import_cycle_between_parts_of_the_package() -> None:
    _fail_on_cycle(import_graph())


def test_no_import_cycle_between_modules() -> None:
    _fail_on_cycle(module_graph())


def _run(*snippets: str) -> str:
    """What a fresh interpreter prints after running the snippets (each dedented) one after the other."""
    code = "\n".join(textwrap.dedent(snippet) for snippet in snippets)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


LOADED = """
    heavy = sorted(name for name in sys.modules if name == "torch" or name.startswith("pixelwise.train"))
    print(heavy)
"""


def test_inference_with_a_numpy_backend_loads_neither_training_code_nor_torch() -> None:
    output = _run(
        """
        import sys
        import numpy as np
        import pixelwise.inference
        from pixelwise.data.classes import ClassSpec
        from pixelwise.inference import InferenceSpec, Predictor

        spec = InferenceSpec(model="numpy", classes=ClassSpec.default(2), mean=(0.5,), std=(0.25,), in_channels=1)
        predictor = Predictor(lambda batch: np.concatenate([-batch, batch], axis=1), spec, tile_size=16)
        assert predictor.predict_labels(np.random.default_rng(0).random((40, 30, 3))).shape == (40, 30)
        """,
        LOADED,
    )
    assert output == "[]"


def test_predicting_from_a_checkpoint_loads_no_training_code(tmp_path: Path) -> None:
    import torch

    from pixelwise.data.classes import ClassSpec
    from pixelwise.models.registry import create_model

    model = create_model("unet-small", num_classes=2, in_channels=1, width=4, depth=2)
    torch.save(
        {
            "format": "pixelwise-checkpoint/1",
            "model": {"name": "unet-small", "options": {"width": 4, "depth": 2}},
            "state_dict": model.state_dict(),
            "classes": ClassSpec.default(2).to_dict(),
            "normalization": {"mean": [0.5], "std": [0.25]},
            "in_channels": 1,
        },
        tmp_path / "best.pt",
    )
    output = _run(
        f"""
        import sys
        import numpy as np
        from pixelwise.inference import Predictor

        predictor = Predictor.load({str(tmp_path)!r}, tile_size=16)
        assert predictor.predict(np.zeros((20, 20), np.float32)).shape == (2, 20, 20)
        print(sorted(name for name in sys.modules if name.startswith("pixelwise.train")))
        """
    )
    assert output == "[]"


def test_the_package_and_the_classical_path_load_no_torch() -> None:
    output = _run(
        """
        import sys
        import numpy as np
        import pixelwise as pw

        image = np.random.default_rng(0).random((24, 24), dtype=np.float32)
        pw.classical.segment("otsu", image)
        pw.evaluate((image > 0.5).astype(np.uint8), (image > 0.4).astype(np.uint8), classes=pw.ClassSpec.default(2))
        """,
        LOADED,
    )
    assert output == "[]"


def test_no_module_is_longer_than_a_reader_can_hold() -> None:
    lengths = {path: len(path.read_text().splitlines()) for path in sorted(SOURCE.rglob("*.py"))}
    too_long = [f"{path.relative_to(SOURCE)} ({count})" for path, count in lengths.items() if count > MAX_LINES]
    assert not too_long, f"modules over {MAX_LINES} lines: {', '.join(too_long)}; split them by concern"


MAX_FUNCTION_LINES = 100


def function_lengths() -> dict[str, int]:
    """Lines of every function's body in the package, its docstring left out: ``"module.py:line name"``."""
    lengths: dict[str, int] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body = node.body
            documented = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
            first = body[1] if documented and len(body) > 1 else body[0]
            assert node.end_lineno is not None
            lengths[f"{path.relative_to(SOURCE)}:{node.lineno} {node.name}"] = node.end_lineno - first.lineno + 1
    return lengths


def test_no_function_is_longer_than_a_reader_can_follow() -> None:
    too_long = [f"{name} ({count})" for name, count in function_lengths().items() if count > MAX_FUNCTION_LINES]
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {', '.join(too_long)}; split them into steps"
