"""`pixelwise export CHECKPOINT [-o MODEL.onnx]`: one ONNX file that predicts without PyTorch.

The file holds the weights and everything ``predict`` needs (classes, normalisation, channels, tile size,
stride) and is written only after ONNX Runtime has matched PyTorch on four input shapes, which are printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from pixelwise.cli.app import app
from pixelwise.errors import PixelwiseError


@app.command(name="export")
def export_command(
    checkpoint: Path = typer.Argument(..., help="A best.pt / last.pt from 'pixelwise train', or its run folder."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="The .onnx file to write; default: the checkpoint's name with .onnx, beside it."
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for the export and its check (default: the runtimes' choice)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the closing line."),
) -> None:
    """Export a trained model to ONNX, checked against PyTorch, for 'pixelwise predict' without PyTorch."""
    from pixelwise.inference.onnx_export import OPSET, export

    if threads is not None and threads < 1:
        raise PixelwiseError(f"--threads {threads}: give 1 or more")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if not quiet:
        print(f"exporting {checkpoint} (opset {OPSET}; a few seconds to a few minutes) ...", file=sys.stderr)
    report = export(checkpoint, out, overwrite=overwrite, threads=threads)
    if not quiet:
        print("ONNX Runtime against PyTorch (input shape N×C×H×W):")
        for check in report.checks:
            print(f"  {check.describe()}")
    print(
        f"wrote {report.path} ({report.size / 2**20:.1f} MiB, opset {report.opset}); "
        f"predict with: pixelwise predict {report.path} IMAGES -o OUT"
    )
