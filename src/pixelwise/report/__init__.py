"""The comparison report: figures (matplotlib), ``report.md`` and a self-contained ``report.html``.

``write_report(results, out_dir)`` takes the ``ComparisonResults`` that ``pixelwise.compare`` returns (its
``to_dict()`` is ``results.json``; records and schema in ``report.results``; a ``results.json`` read back with
``ComparisonResults.from_dict``) and the example PNGs it saved under ``out_dir``, and writes

- ``figures/methods.png``: clean test-set scores per method, coloured by family, oracle bars hatched;
- ``figures/noise.png``: mIoU against Gaussian sigma and against the salt-and-pepper fraction;
- ``figures/examples.png``: image | truth | each method, with the class legend in the dataset's colours;
- ``report.md`` (links the figures) and ``report.html`` (the same figures inline as base64 PNG: one file
  that opens offline and can be mailed on its own).

Oracle results (regions labelled with the test truth) are upper bounds, not methods: they get their own
table, hatched bars and dotted curves, and the word "oracle" wherever they appear.

Where things are: ``results`` (the records), ``content`` (what the report says: method order, tables, summary sentences, facts and
notes, all computed from the results), ``figures`` (matplotlib), ``markdown`` and ``html`` (the two
renderings of the same content). A new section is a function in ``content`` and its place in each renderer.
"""

from __future__ import annotations

import os
from pathlib import Path

from pixelwise.files import atomic_path
from pixelwise.report.content import (
    FAMILY_COLORS,
    FAMILY_LABELS,
    SUMMARY_METRICS,
    dataset_lines,
    honest_methods,
    noise_rows,
    oracle_methods,
    per_class_rows,
    score_rows,
    summary_sentences,
)
from pixelwise.report.figures import (
    noise_curves,
    plot_examples,
    plot_methods,
    plot_noise,
    read_example,
    save_figure,
)
from pixelwise.report.html import render_html
from pixelwise.report.markdown import render_markdown
from pixelwise.report.results import ComparisonResults

__all__ = [
    "FAMILY_COLORS",
    "FAMILY_LABELS",
    "SUMMARY_METRICS",
    "ComparisonResults",
    "dataset_lines",
    "honest_methods",
    "noise_curves",
    "noise_rows",
    "oracle_methods",
    "per_class_rows",
    "plot_examples",
    "plot_methods",
    "plot_noise",
    "read_example",
    "render_html",
    "render_markdown",
    "score_rows",
    "summary_sentences",
    "write_report",
]


def write_report(results: ComparisonResults, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the figures, ``report.md`` and ``report.html`` into ``out_dir``; return their paths by name.

    Figures that have nothing to show are left out (no noise sweep: no noise figure; no saved examples: no
    grid), and the text says so instead of showing an empty plot.
    """
    out = Path(out_dir)
    written: dict[str, Path] = {}
    if results.methods:
        written["methods"] = save_figure(plot_methods(results), out / "figures" / "methods.png")
    if len(results.noise) > 1 and results.methods:
        written["noise"] = save_figure(plot_noise(results), out / "figures" / "noise.png")
    if results.examples and honest_methods(results):
        written["examples"] = save_figure(plot_examples(results, out), out / "figures" / "examples.png")
    if results.examples and oracle_methods(results):
        figure = plot_examples(results, out, oracle=True)
        written["examples_oracle"] = save_figure(figure, out / "figures" / "examples-oracle.png")
    figure_links = {name: path.relative_to(out).as_posix() for name, path in written.items()}
    figure_data = {name: path.read_bytes() for name, path in written.items()}
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(render_markdown(results, figure_links), encoding="utf-8")
    written["markdown"] = out / "report.md"
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(render_html(results, figure_data), encoding="utf-8")
    written["html"] = out / "report.html"
    return written
