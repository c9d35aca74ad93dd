"""modelport: serve trained models fast, Spark ML pipelines without a JVM."""

from __future__ import annotations

from modelport.errors import ModelportError
from modelport.loading import load_model
from modelport.model import Model
from modelport.signature import Batch, Signature, TensorSpec

__version__ = "0.1.0"

__all__ = ["Batch", "Model", "ModelportError", "Signature", "TensorSpec", "__version__", "load_model"]
