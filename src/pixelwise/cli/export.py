"""`pixelwise export CHECKPOINT [-o MODEL.onnx]`: one ONNX file that predicts without PyTorch.

The file holds the weights and everything ``predict`` needs (classes, normalisation, channels, tile size,
stride) and is written only after ONNX Runtime has matched PyTorch on four input shapes, which are printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from pixelwise.cli.app import app
from pixelwise.cli.options import (
    out_option,
    overwrite_option,
    quiet_option,
    set_threads,
    threads_option,
)


@app.command(
    name="export",
    epilog="""Examples:

\b
  pixelwise export runs/cells/best.pt                # -> runs/cells/best.onnx
  pixelwise export runs/cells -o deploy/cells.onnx --overwrite""",
)
def export_command(
    checkpoint: Path = typer.Argument(
        ..., metavar="CHECKPOINT", help="A best.pt / last.pt from 'pixelwise train', or its run folder."
    ),
    out: Path | None = out_option(
        "The .onnx file to write.  [default: the checkpoint's name with .onnx, beside it]", default=None, metavar="FILE"
    ),
    threads: int | None = threads_option("CPU threads for the export and its check."),
    overwrite: bool = overwrite_option("Replace an existing output file."),
    quiet: bool = quiet_option("Only the closing line."),
) -> None:
    """Export a trained model to one ONNX file.

    Checked against PyTorch before it is written; 'pixelwise predict' and 'pixelwise serve' run it without
    PyTorch.
    """
    from pixelwise.inference.onnx_export import OPSET, export

    set_threads(threads, torch=True)

    def starting(target: Path) -> None:  # after the checks: bad input stays one line
        if not quiet:
            print(f"exporting {checkpoint} to {target} (opset {OPSET}; seconds to minutes) ...", file=sys.stderr)

    report = export(checkpoint, out, overwrite=overwrite, threads=threads, starting=starting)
    if not quiet:
        print("ONNX Runtime against PyTorch (input shape N×C×H×W):")
        for check in report.checks:
            print(f"  {check.describe()}")
    print(
        f"wrote {report.path} ({report.size / 2**20:.1f} MiB, opset {report.opset}); "
        f"predict with: pixelwise predict {report.path} IMAGES -o OUT"
    )
