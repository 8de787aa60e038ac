"""`pixelwise train`: to be written."""

from __future__ import annotations

from pixelwise.cli.app import app  # noqa: F401
