"""Flavors turn an artifact on disk into a :class:`~modelport.core.model.Predictor`.

Each flavor is a module with ``load(path, config) -> Predictor`` and imports its
framework inside ``load``, so ``import modelport`` stays light. ``detect`` picks the flavor
from the artifact files present (and refuses a directory holding two); ``flavor = "..."`` in
modelport.toml skips it. The Spark ML flavor lives with its runtime (``runtimes/sparkml/flavor.py``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.core.config import CONFIG_FILE, ModelConfig
from modelport.core.errors import ModelLoadError

if TYPE_CHECKING:
    from modelport.core.model import Predictor

__all__ = ["FLAVORS", "detect", "load_predictor"]

FLAVORS: dict[str, str] = {
    "sklearn": "modelport.runtimes.flavors.sklearn",
    "onnx": "modelport.runtimes.flavors.onnx",
    "xgboost": "modelport.runtimes.flavors.xgboost",
    "lightgbm": "modelport.runtimes.flavors.lightgbm",
    "mlflow": "modelport.runtimes.flavors.mlflow",
    "sparkml": "modelport.runtimes.sparkml.flavor",
    "python": "modelport.runtimes.flavors.python",
    "skops": "modelport.runtimes.flavors.skops",
    "torch": "modelport.runtimes.flavors.pytorch",
    "tensorflow": "modelport.runtimes.flavors.tensorflow",
}

EXPECTED = (
    "an MLflow model directory (MLmodel), a saved Spark ML model (metadata/ and stages/ or data/), "
    "*.onnx, *.joblib / *.pkl / *.pickle / *.skops (scikit-learn), *.json / *.ubj (XGBoost Booster), "
    "*.txt (LightGBM model), *.pt / *.pt2 (TorchScript / torch.export program), "
    "a TensorFlow SavedModel directory (saved_model.pb), *.keras (Keras 3)"
)

_IGNORED = {CONFIG_FILE, "README.md", "README", "requirements.txt", "conda.yaml", "python_env.yaml", "sample.json"}


def _sniff_file(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".keras":
        return "tensorflow"
    if suffix in {".joblib", ".pkl", ".pickle"}:
        return "sklearn"
    if suffix == ".skops":
        return "skops"
    if suffix in {".pt", ".pts", ".torchscript", ".pt2"}:
        return "torch"
    if suffix in {".ubj", ".bst", ".xgb"}:
        return "xgboost"
    if suffix == ".json":
        try:
            with path.open("rb") as fh:
                head = fh.read(4096)
        except OSError:
            return None
        if b'"learner"' in head or b'"gradient_booster"' in head:
            return "xgboost"
        return None
    if suffix in {".txt", ".lgb", ".model"}:
        try:
            with path.open("rb") as fh:
                head = fh.read(256)
        except OSError:
            return None
        if head.startswith(b"tree\n") or head.startswith(b"tree\r\n") or b"\nversion=v" in head[:64]:
            return "lightgbm"
        return None
    return None


def _is_spark_dir(path: Path) -> bool:
    meta = path / "metadata"
    if not meta.is_dir():
        return False
    for part in sorted(meta.glob("part-*")):
        try:
            with part.open("rb") as fh:
                line = fh.readline()
            return b'"class"' in line and b"org.apache.spark" in line or b'"sparkVersion"' in line
        except OSError:
            return False
    return False


def detect(path: Path) -> tuple[str, Path]:
    """The flavor of the artifact at ``path`` and the file or directory to load."""
    if path.is_file():
        flavor = _sniff_file(path)
        if flavor is None:
            raise ModelLoadError(f"{path}: not a model artifact modelport recognises; expected {EXPECTED}")
        return flavor, path
    if not path.is_dir():
        raise ModelLoadError(f"{path}: no such file or directory")
    if (path / "MLmodel").is_file():
        return "mlflow", path
    if _is_spark_dir(path):
        return "sparkml", path
    if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
        return "tensorflow", path
    candidates = [
        p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".") and p.name not in _IGNORED
    ]
    found = [(f, p) for p in candidates if (f := _sniff_file(p)) is not None]
    if len(found) == 1:
        return found[0]
    if not found:
        listed = ", ".join(p.name for p in candidates) or "nothing"
        raise ModelLoadError(f"{path}: no model artifact found (it holds: {listed}); expected {EXPECTED}")
    raise ModelLoadError(
        f"{path}: several model artifacts ({', '.join(p.name for _, p in found)}); "
        f"keep one per version directory or name the flavor in {CONFIG_FILE}"
    )


def load_predictor(flavor: str, path: Path, config: ModelConfig) -> Predictor:
    """Import the flavor's module and load ``path`` with it."""
    module_name = FLAVORS.get(flavor)
    if module_name is None:
        raise ModelLoadError(f"{path}: unknown flavor '{flavor}'; supported: {', '.join(FLAVORS)}")
    module = importlib.import_module(module_name)
    try:
        predictor: Predictor = module.load(path, config)
    except ModelLoadError:
        raise
    except ImportError as exc:
        raise ModelLoadError(
            f"{path}: the {flavor} flavor needs a package that is not installed ({exc}); "
            f"install it with: pip install 'modelport[{flavor}]'"
        ) from exc
    except Exception as exc:
        raise ModelLoadError(f"{path}: could not load as {flavor}: {type(exc).__name__}: {exc}") from exc
    return predictor
