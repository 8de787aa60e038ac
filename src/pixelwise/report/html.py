"""``report.html``: the report's content as one self-contained page (inline CSS, figures as base64 PNG)."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

from pixelwise.report.content import (
    FAMILY_COLORS,
    OBJECT_HEADER,
    OBJECT_SCORE_COLUMNS,
    SCORE_HEADER,
    SUMMARY_METRICS,
    Cell,
    dataset_lines,
    degenerate,
    degenerate_notes,
    honest_methods,
    measuring_notes,
    noise_rows,
    object_methods,
    object_notes,
    object_rows,
    oracle_methods,
    per_class_rows,
    score_rows,
    summary_sentences,
    trained_models,
)
from pixelwise.report.legend import OUTLINE, hex_color, is_light
from pixelwise.report.results import ComparisonResults, MethodResult

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0;
       background: #fafafa; }
main { max-width: 1220px; margin: 0 auto; padding: 24px 32px 48px; background: white; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
p.summary { font-size: 1.05em; line-height: 1.5; background: #f3f6fa; padding: 10px 14px; border-radius: 6px; }
ul.facts { color: #444; line-height: 1.5; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.92em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e6e6e6; }
th { background: #f0f0f0; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: 700; }
tr.oracle td { color: #666; font-style: italic; }
tr.degenerate td { color: #8a6d3b; }
p.degenerate { color: #8a6d3b; font-size: 0.92em; margin-top: -8px; }
.badge { display: inline-block; font-size: 0.75em; font-style: normal; font-weight: 700; color: white;
         background: #888; border-radius: 3px; padding: 0 5px; margin-left: 6px; letter-spacing: 0.04em; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px;
          box-sizing: border-box; vertical-align: -1px; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 4px; }
.scroll { overflow-x: auto; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }
footer { color: #777; font-size: 0.85em; margin-top: 2em; }
"""


def _html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    numeric_from: int,
    best_columns: Sequence[int] = (),
    oracle_rows: bool = False,
    first_column_html: Sequence[str] | None = None,
    degenerate_rows: Sequence[bool] = (),
) -> str:
    """An HTML table; the best value of each column in ``best_columns`` is bold (highest, or lowest for ms),
    among the rows that are not ``degenerate_rows`` (marked instead)."""
    failed = list(degenerate_rows) + [False] * (len(rows) - len(degenerate_rows))
    best: dict[int, float] = {}
    for column in best_columns:
        values = [row[column].value for row, bad in zip(rows, failed, strict=True) if not bad]
        finite = [value for value in values if not math.isnan(value)]
        if finite:
            best[column] = min(finite) if "ms" in header[column] else max(finite)
    # <wbr> after underscores lets long method names wrap in narrow columns instead of widening the table
    head = "".join(
        f'<th class="{"num" if index >= numeric_from else ""}">{html.escape(cell).replace("_", "_<wbr>")}</th>'
        for index, cell in enumerate(header)
    )
    body = []
    for row_index, row in enumerate(rows):
        cells = []
        for index, cell in enumerate(row):
            classes = ["num"] if index >= numeric_from else []
            if index in best and not failed[row_index] and cell.value == best[index]:
                classes.append("best")
            content = first_column_html[row_index] if index == 0 and first_column_html else html.escape(cell.text)
            cells.append(f'<td class="{" ".join(classes)}">{content}</td>')
        row_class = "oracle" if oracle_rows else "degenerate" if failed[row_index] else ""
        body.append(f'<tr class="{row_class}">{"".join(cells)}</tr>')
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _method_cell(method: MethodResult) -> str:
    color = FAMILY_COLORS.get(method.family, "#777777")
    badge = '<span class="badge">ORACLE</span>' if method.oracle else ""
    if degenerate(method):
        reason = html.escape(str(degenerate(method)), quote=True)
        badge += f'<span class="badge" style="background:#c77c02" title="{reason}">⚠ ONE CLASS</span>'
    return f'<span class="swatch" style="background:{color}"></span>{html.escape(method.name)}{badge}'


def _class_cell(name: str, color: Sequence[int]) -> str:
    """A class name with its colour; a light colour outlined, or it would vanish on the white page."""
    border = f"border:1px solid {hex_color(OUTLINE)};" if is_light(color) else ""
    return f'<span class="swatch" style="background:{hex_color(color)};{border}"></span>{html.escape(name)}'


def _notes(lines: Sequence[str]) -> list[str]:
    return [f'<p class="degenerate">{html.escape(line)}</p>' for line in lines]


def _html_figure(data: bytes, alt: str, caption: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _bold_markdown(text: str) -> str:
    """``**x**`` from the summary sentences -> <strong>x</strong>, everything else escaped."""
    pieces = html.escape(text).split("**")
    return "".join(f"<strong>{piece}</strong>" if index % 2 else piece for index, piece in enumerate(pieces))


def render_html(results: ComparisonResults, figures: dict[str, bytes]) -> str:
    """``report.html``: one self-contained page (inline CSS, figures as base64 PNG, no scripts, no links out)."""
    honest, oracles = honest_methods(results), oracle_methods(results)
    title = f"pixelwise comparison: {results.dataset.name}"
    footer = ", ".join(f"{name} {version}" for name, version in results.versions.items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><main>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="summary">{_bold_markdown(" ".join(summary_sentences(results)))}</p>',
        '<ul class="facts">' + "".join(f"<li>{html.escape(line)}</li>" for line in dataset_lines(results)) + "</ul>",
        *_score_section(results, figures, honest, oracles),
        *_noise_section(results, figures, honest + oracles),
        *_example_section(figures),
        *_class_and_object_sections(results, honest, oracles),
        "<h2>How this was measured</h2>",
        "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in measuring_notes(results)) + "</ul>",
        *_model_section(results),
        f"<footer>{html.escape(results.created)} · {html.escape(footer)}</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _score_section(
    results: ComparisonResults, figures: dict[str, bytes], honest: list[Any], oracles: list[Any]
) -> list[str]:
    """The clean scores: the honest methods, the oracle bounds apart, the bar chart."""
    parts = [
        "<h2>Scores on the clean test split</h2>",
        _html_table(
            SCORE_HEADER,
            score_rows(honest),
            numeric_from=2,
            best_columns=list(range(2, 2 + len(SUMMARY_METRICS) + 1)),
            first_column_html=[_method_cell(method) for method in honest],
            degenerate_rows=[bool(degenerate(method)) for method in honest],
        ),
        *_notes(degenerate_notes(honest)),
    ]
    if oracles:
        parts += [
            "<h3>Oracle upper bounds <span class='badge'>ORACLE</span></h3>",
            "<p>These label each region with the <em>test</em> truth. They show how well a partition follows the "
            "objects, not what the method can do on new images: never compare them with the rows above.</p>",
            _html_table(
                SCORE_HEADER,
                score_rows(oracles),
                numeric_from=2,
                oracle_rows=True,
                first_column_html=[_method_cell(method) for method in oracles],
            ),
        ]
    if "methods" in figures:
        parts.append(
            _html_figure(
                figures["methods"],
                "bar chart of the scores per method",
                "Clean test-set scores, best honest method at the top; hatched bars are oracle upper bounds.",
            )
        )
    return parts


def _noise_section(results: ComparisonResults, figures: dict[str, bytes], methods: list[Any]) -> list[str]:
    """mIoU under each noise level, when there was noise."""
    if len(results.noise) <= 1:
        return []
    header, rows = noise_rows(results, methods)
    parts = ["<h2>Robustness to noise</h2>"]
    if "noise" in figures:
        parts.append(
            _html_figure(
                figures["noise"],
                "mIoU against noise level, one line per method",
                "mIoU on the test images with added noise (clean at 0); thick lines are CNNs (dashed: "
                "adversarial). Oracle bounds, if any, have their own row, each dotted in the colour of its "
                "classical method: they show the partition itself breaking up under noise.",
            )
        )
    parts.append(
        _html_table(header, rows, numeric_from=1, first_column_html=[_method_cell(method) for method in methods])
    )
    return parts


def _example_section(figures: dict[str, bytes]) -> list[str]:
    """The grids of test images with the truth and each method's prediction (and the oracles')."""
    parts: list[str] = []
    if "examples" in figures:
        parts += [
            "<h2>Examples</h2>",
            _html_figure(
                figures["examples"],
                "grid of test images, their truth and each method's prediction",
                "Test images (the last rows with noise added), the truth and every method's prediction, "
                "in the dataset's class colours.",
            ),
        ]
    if "examples_oracle" in figures:
        parts += [
            "<h3>Oracle bounds on the same images <span class='badge'>ORACLE</span></h3>",
            _html_figure(
                figures["examples_oracle"],
                "grid of the same test images with each oracle bound",
                "The classical partitions with each region labelled by the test truth: how well the regions "
                "follow the objects, not a prediction any method could make.",
            ),
        ]
    return parts


def _class_and_object_sections(results: ComparisonResults, honest: list[Any], oracles: list[Any]) -> list[str]:
    """IoU per class, and the object scores when the truth has instances."""
    header, rows = per_class_rows(results, honest)
    classes = results.dataset.classes
    swatches = [_class_cell(name, color) for name, color in zip(classes.names, classes.colors, strict=True)]
    parts = ["<h2>IoU per class (clean)</h2>", _html_table(header, rows, numeric_from=1, first_column_html=swatches)]
    with_objects = object_methods(results, honest + oracles)
    if with_objects:
        parts += [
            "<h2>Objects (clean)</h2>",
            _html_table(
                OBJECT_HEADER,
                object_rows(with_objects),
                numeric_from=1,
                best_columns=OBJECT_SCORE_COLUMNS,
                first_column_html=[_method_cell(method) for method in with_objects],
            ),
            "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in object_notes(results)) + "</ul>",
        ]
    return parts


def _model_section(results: ComparisonResults) -> list[str]:
    """Where the trained networks are kept."""
    checkpoints = trained_models(results)
    if not checkpoints:
        return []
    return [
        "<h2>Trained models</h2>",
        "<p>Kept beside this report; reuse one with <code>pixelwise predict CHECKPOINT IMAGES</code>:</p><ul>",
        *(f"<li><code>{html.escape(str(m.checkpoint))}</code> ({html.escape(m.name)})</li>" for m in checkpoints),
        "</ul>",
    ]
