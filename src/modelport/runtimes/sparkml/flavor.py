"""Saved Apache Spark ML PipelineModels and single stages, run without Spark or a JVM.

``load`` is also the entry point the MLflow flavor calls for ``spark`` flavor directories.
"""

from __future__ import annotations

from pathlib import Path

from modelport.core.config import ModelConfig
from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.pipeline import SparkPipeline, load_pipeline
from modelport.runtimes.sparkml.registry import load_all

__all__ = ["load"]


def load(path: Path, config: ModelConfig) -> SparkPipeline:
    if not path.is_dir():
        raise ModelLoadError(f"{path}: a saved Spark ML model is a directory (metadata/, data/ or stages/)")
    load_all()
    return load_pipeline(path, config.outputs)
