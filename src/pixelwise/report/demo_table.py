"""The README's table of the demo, from the demo's ``results.json``: the run the README describes, and nothing
else (``tests/test_readme.py`` checks the README's table is this rendering of ``docs/demo-results.json``)."""

from __future__ import annotations

import math

from pixelwise.report.content import honest_methods, oracle_methods
from pixelwise.report.results import ComparisonResults, MethodResult

NOISE = "gaussian-0.2"


def demo_table(results: ComparisonResults) -> str:
    """Markdown: the CNN, the adversarial CNN, the best classical method, Otsu, and the best oracle bound, with
    their clean mIoU and their mIoU under Gaussian noise σ = 0.2."""
    honest = honest_methods(results)
    by_name = {method.name: method for method in honest}
    classical = [method for method in honest if method.family == "classical"]
    rows: list[tuple[str, str, MethodResult]] = []
    for name in ("cnn", "adversarial"):
        if name in by_name:
            rows.append((name, _family(by_name[name]), by_name[name]))
    if classical:
        rows.append((f"{classical[0].name}, the best classical", _family(classical[0]), classical[0]))
    if "otsu" in by_name and (not classical or classical[0].name != "otsu"):
        rows.append(("otsu", _family(by_name["otsu"]), by_name["otsu"]))
    oracles = oracle_methods(results)
    if oracles:
        rows.append((oracles[0].name, "upper bound: regions labelled with the test truth", oracles[0]))
    lines = [
        "| method | family | mIoU clean | mIoU, Gaussian noise σ = 0.2 |",
        "| --- | --- | ---: | ---: |",
        *(
            f"| {shown} | {family} | {_score(method.metrics.miou)} | {_noisy(method)} |"
            for shown, family, method in rows
        ),
    ]
    return "\n".join(lines)


def _family(method: MethodResult) -> str:
    seconds = f"{method.train_seconds:.0f} s" if not math.isnan(method.train_seconds) else "untimed"
    model = method.description.split(" ", 1)[0].rstrip(",")
    if method.family == "cnn":
        return f"CNN (`{model}`, {seconds} of training)"
    if method.family == "adversarial":
        return f"CNN + discriminator (`{model}`, {seconds} of training)"
    return "classical, labeler fitted on train"


def _noisy(method: MethodResult) -> str:
    level = method.noise.get(NOISE)
    return _score(level.miou) if level is not None else "-"


def _score(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"
