"""Saved Apache Spark ML PipelineModels and single stages, run without Spark or a JVM.

``load`` is also the entry point the MLflow flavor calls for ``spark`` flavor directories.
"""

from __future__ import annotations

from pathlib import Path

from modelport.config import ModelConfig
from modelport.errors import ModelLoadError
from modelport.sparkml.pipeline import SparkPipeline, load_pipeline
from modelport.sparkml.registry import load_all

__all__ = ["load"]


def load(path: Path, config: ModelConfig) -> SparkPipeline:
    if not path.is_dir():
        raise ModelLoadError(f"{path}: a saved Spark ML model is a directory (metadata/, data/ or stages/)")
    load_all()
    return load_pipeline(path, config.outputs)
