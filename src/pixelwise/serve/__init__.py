"""``pixelwise serve``: a web page and an HTTP API for a trained model (FastAPI + uvicorn).

``create_app(predictor, settings)`` builds the service (``serve.app``); ``load_predictor`` is the one place
that loads a model file (``serve.model``); ``serve.server`` runs it with uvicorn. Needs the ``serve``
extra: ``pip install 'pixelwise[serve]'``.
"""

from __future__ import annotations

from pixelwise.serve.app import create_app
from pixelwise.serve.model import ServedPredictor, load_predictor
from pixelwise.serve.settings import Settings

__all__ = ["ServedPredictor", "Settings", "create_app", "load_predictor"]
