"""Flavors turn an artifact on disk into a :class:`~modelport.model.Predictor`.

Each flavor is a module with ``load(path, config) -> Predictor`` and imports its
framework inside ``load``, so ``import modelport`` stays light. Detection is by
files, as DESIGN.md fixes it; ``flavor = "..."`` in modelport.toml skips it.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.config import CONFIG_FILE, ModelConfig
from modelport.errors import ModelLoadError

if TYPE_CHECKING:
    from modelport.model import Predictor

__all__ = ["FLAVORS", "detect", "fork_safe", "load_predictor"]

FLAVORS: dict[str, str] = {
    "sklearn": "modelport.flavors.sklearn",
    "onnx": "modelport.flavors.onnx",
    "xgboost": "modelport.flavors.xgboost",
    "lightgbm": "modelport.flavors.lightgbm",
    "mlflow": "modelport.flavors.mlflow",
    "sparkml": "modelport.flavors.sparkml",
    "python": "modelport.flavors.python",
    "skops": "modelport.flavors.skops",
    "torch": "modelport.flavors.pytorch",
    "tensorflow": "modelport.flavors.tensorflow",
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


# Where wrappers (signature overrides, compiled kernels, MLflow's view) keep what they wrap.
_WRAPPED = ("inner", "native", "_native", "predictor")


def declares(predictor: object, name: str, value: object) -> bool:
    """True when ``predictor``, or a predictor it wraps, sets attribute ``name`` to ``value``.

    Wrapped predictors are found through instance attributes only, so a lazily loaded native
    model (the compile cache's) is not loaded by asking.
    """
    stack, seen = [predictor], set()
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        own = getattr(current, "__dict__", {})
        if own.get(name, getattr(type(current), name, None)) == value:
            return True
        stack.extend(own.get(wrapped) for wrapped in _WRAPPED)
    return False


def fork_safe(predictor: object) -> bool:
    """False when ``predictor``, or a predictor it wraps, declares ``fork_safe = False``.

    A flavor declares it when what it loaded (torch's thread pools, mlflow's runtime, a custom
    model's threads) cannot be inherited by a forked worker; the process model asks this for
    every loaded model before it forks.
    """
    return not declares(predictor, "fork_safe", False)


def runs_user_code(predictor: object) -> bool:
    """True for flavors whose predict is the user's own Python (custom models, MLflow pyfunc).

    A framework error raised from inside user code may be the code's own bug, so it is not taken
    for a refusal of the client's values: such code marks client errors by raising modelport's
    error classes (docs/models.md).
    """
    return declares(predictor, "user_code", True)


def read_json(path: Path) -> object:
    """JSON from a file, with a load error that names it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not readable JSON: {exc}") from None
