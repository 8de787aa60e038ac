"""``report.md``: the report's content as Markdown, with the figures linked by relative path."""

from __future__ import annotations

from collections.abc import Sequence

from pixelwise.report.content import (
    OBJECT_HEADER,
    SCORE_HEADER,
    Cell,
    dataset_lines,
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
from pixelwise.report.results import ComparisonResults


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Cell]], *, numeric_from: int) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    align = ["---" if index < numeric_from else "---:" for index in range(len(header))]
    lines = ["| " + " | ".join(escape(cell) for cell in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(escape(cell.text) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(results: ComparisonResults, figures: dict[str, str]) -> str:
    """``report.md``: the same content as the HTML report, with the figures linked by relative path."""
    honest, oracles = honest_methods(results), oracle_methods(results)
    parts = [f"# pixelwise comparison: {results.dataset.name}", ""]
    parts += [" ".join(summary_sentences(results)), ""]
    parts += [f"- {line}" for line in dataset_lines(results)] + [""]
    parts += ["## Scores on the clean test split", ""]
    parts += [_markdown_table(SCORE_HEADER, score_rows(honest), numeric_from=2), ""]
    parts += [*(f"{note}  " for note in degenerate_notes(honest)), ""] if degenerate_notes(honest) else []
    if oracles:
        parts += ["### Oracle upper bounds (use the test truth; not comparable with the rows above)", ""]
        parts += [_markdown_table(SCORE_HEADER, score_rows(oracles), numeric_from=2), ""]
    if "methods" in figures:
        parts += [f"![scores per method]({figures['methods']})", ""]
    if len(results.noise) > 1:
        parts += ["## Robustness to noise (mIoU)", ""]
        header, rows = noise_rows(results, honest + oracles)
        parts += [_markdown_table(header, rows, numeric_from=1), ""]
        if "noise" in figures:
            parts += [f"![mIoU against noise]({figures['noise']})", ""]
    if "examples" in figures:
        parts += ["## Examples", "", f"![image, truth and each method's prediction]({figures['examples']})", ""]
    if "examples_oracle" in figures:
        parts += ["### Oracle bounds on the same images (labelled with the test truth)", ""]
        parts += [f"![image, truth and each oracle bound]({figures['examples_oracle']})", ""]
    parts += ["## IoU per class (clean)", ""]
    header, rows = per_class_rows(results, honest)
    parts += [_markdown_table(header, rows, numeric_from=1), ""]
    with_objects = object_methods(results, honest + oracles)
    if with_objects:
        parts += ["## Objects (clean)", ""]
        parts += [_markdown_table(OBJECT_HEADER, object_rows(with_objects), numeric_from=1), ""]
        parts += [f"- {note}" for note in object_notes(results)] + [""]
    parts += ["## How this was measured", ""] + [f"- {note}" for note in measuring_notes(results)] + [""]
    checkpoints = trained_models(results)
    if checkpoints:
        parts += ["## Trained models", "", "Reuse one with `pixelwise predict CHECKPOINT IMAGES -o DIR`:", ""]
        parts += [f"- `{method.checkpoint}` ({method.name})" for method in checkpoints] + [""]
    if results.versions:
        versions = ", ".join(f"{name} {version}" for name, version in results.versions.items())
        parts += ["## Versions", "", versions, ""]
    return "\n".join(parts)
