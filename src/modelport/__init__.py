"""modelport: serve trained models fast, Spark ML pipelines without a JVM."""

from __future__ import annotations

from modelport.core.errors import ModelportError
from modelport.core.model import Model
from modelport.core.signature import Batch, Signature, TensorSpec
from modelport.runtimes.loading import load_model

__version__ = "0.1.0"

__all__ = ["Batch", "Model", "ModelportError", "Signature", "TensorSpec", "__version__", "load_model"]
