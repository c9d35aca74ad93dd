"""MLflow model directories, read without importing mlflow.

The ``MLmodel`` file names the native flavors the directory holds; the first of
``sklearn``, ``xgboost``, ``lightgbm``, ``onnx``, ``spark`` found is loaded with
modelport's own flavor for it; a directory with only ``python_function`` is run through
mlflow itself (:mod:`modelport.runtimes.flavors.pyfunc`, extra ``modelport[mlflow]``). MLflow's
recorded input signature then becomes the served one: a column-based signature gives one
input per column (stacked back into the array, in signature order, when the model is an
array model), a tensor-based one gives the tensors it names. Outputs are the native flavor's (``predict`` and, for
classifiers, ``predict_proba``); MLflow's output schema is kept in ``info``.

scikit-learn models saved as skops (MLflow 3's default) load with exactly the
``skops_trusted_types`` the MLmodel records (:mod:`modelport.runtimes.flavors.skops`).
"""

from __future__ import annotations

import importlib
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.config import ModelConfig
from modelport.core.errors import ModelLoadError
from modelport.core.model import Predictor
from modelport.core.signature import Batch, Signature, TensorSpec, datatype_of

__all__ = ["MlflowPredictor", "load"]

SUPPORTED = ("sklearn", "xgboost", "lightgbm", "onnx", "spark")

# MLflow column types (mlflow.types.DataType) to V2 datatypes.
COLUMN_TYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
}

_XGB_SKLEARN = {"XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor"}


def _read_mlmodel(path: Path) -> dict[str, Any]:
    import yaml

    mlmodel = path / "MLmodel"
    try:
        data = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"{mlmodel}: not a readable MLmodel YAML file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise ModelLoadError(f"{mlmodel}: has no 'flavors' mapping; not an MLflow model")
    return data


def load(path: Path, config: ModelConfig) -> Predictor:
    if path.is_file() and path.name == "MLmodel":
        path = path.parent
    mlmodel = _read_mlmodel(path)
    flavors: dict[str, Any] = mlmodel["flavors"]
    chosen = next((f for f in SUPPORTED if f in flavors), None)
    if chosen is None and "python_function" in flavors:
        from modelport.runtimes.flavors.pyfunc import load_pyfunc

        return load_pyfunc(path, mlmodel, config, _parse_specs)
    if chosen is None:
        raise ModelLoadError(
            f"{path / 'MLmodel'}: flavors {', '.join(flavors) or 'none'} are not served by modelport; "
            f"supported MLflow flavors: {', '.join(SUPPORTED)}, python_function (with modelport[mlflow])"
        )
    conf = flavors[chosen] or {}
    native = _load_native(chosen, path, conf, config)
    signature = mlmodel.get("signature") or {}
    return MlflowPredictor(native, chosen, signature, str(path), mlmodel.get("mlflow_version"))


def _data_file(path: Path, flavor: str, conf: dict[str, Any], key: str, default: str) -> Path:
    target = path / str(conf.get(key) or default)
    if not target.exists():
        raise ModelLoadError(f"{path}: MLmodel's {flavor} flavor points at {target.name}, which does not exist")
    return target


def _skops(path: Path, conf: dict[str, Any]) -> Any:
    """MLflow 3's default for scikit-learn: trust exactly the types the MLmodel records."""
    from modelport.runtimes.flavors import skops

    trusted = skops.trusted_types(
        f"{path.parent / 'MLmodel'}: sklearn skops_trusted_types", conf.get("skops_trusted_types")
    )

    def how(refused: list[str]) -> str:
        names = ", ".join(f'"{t}"' for t in [*trusted, *refused])
        return (
            f"the MLmodel's skops_trusted_types lists {', '.join(trusted) or 'none'}; if you trust them, "
            f"log the model again with mlflow.sklearn.log_model(..., skops_trusted_types=[{names}])"
        )

    return skops.read(path, trusted, how)


def _unpickle(path: Path, fmt: str, flavor: str) -> Any:
    if fmt not in ("cloudpickle", "pickle"):
        raise ModelLoadError(
            f"{path}: the {flavor} model is serialized as '{fmt}'; "
            "supported serialization formats: cloudpickle, pickle, skops (scikit-learn)"
        )
    try:
        with path.open("rb") as fh:
            if fmt == "cloudpickle":
                import cloudpickle

                return cloudpickle.load(fh)
            return pickle.load(fh)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise ModelLoadError(f"{path}: not a readable {fmt} file ({type(exc).__name__}: {exc})") from None
    except ModuleNotFoundError as exc:
        raise ModelLoadError(
            f"{path}: the pickled {flavor} model needs the Python module '{exc.name}', which is not installed"
        ) from None


def _load_native(flavor: str, path: Path, conf: dict[str, Any], config: ModelConfig) -> Predictor:
    from modelport.runtimes.flavors import sklearn

    code = conf.get("code")
    if code and (path / str(code)).is_dir() and str(path / str(code)) not in sys.path:
        # Code logged with the model (code_paths=...): MLflow puts it on sys.path before unpickling.
        sys.path.insert(0, str(path / str(code)))
    if flavor == "sklearn":
        target = _data_file(path, flavor, conf, "pickled_model", "model.pkl")
        fmt = str(conf.get("serialization_format") or "cloudpickle")
        estimator = _skops(target, conf) if fmt == "skops" else _unpickle(target, fmt, flavor)
        return sklearn.predictor_for(estimator, config, str(target))
    if flavor == "xgboost":
        target = _data_file(path, flavor, conf, "data", "model.xgb")
        model_class = str(conf.get("model_class") or "xgboost.core.Booster")
        short = model_class.rsplit(".", 1)[-1]
        if short in _XGB_SKLEARN:
            import xgboost as xgb

            estimator = getattr(xgb, short)()
            estimator.load_model(str(target))
            return sklearn.predictor_for(estimator, config, str(target))
        if short != "Booster":
            raise ModelLoadError(
                f"{path}: XGBoost model class {model_class} is not supported; "
                f"supported: xgboost.core.Booster, {', '.join(sorted(_XGB_SKLEARN))}"
            )
        from modelport.runtimes.flavors import xgboost

        return xgboost.load(target, config)
    if flavor == "lightgbm":
        target = _data_file(path, flavor, conf, "data", "model.lgb")
        model_class = str(conf.get("model_class") or "lightgbm.basic.Booster")
        if model_class.rsplit(".", 1)[-1] == "Booster":
            from modelport.runtimes.flavors import lightgbm

            return lightgbm.load(target, config)
        estimator = _unpickle(target, str(conf.get("serialization_format") or "cloudpickle"), flavor)
        return sklearn.predictor_for(estimator, config, str(target))
    if flavor == "onnx":
        from modelport.runtimes.flavors import onnx

        return onnx.load(_data_file(path, flavor, conf, "data", "model.onnx"), config)
    # spark: the saved PipelineModel sits in a subdirectory; modelport runs it without a JVM.
    target = _data_file(path, flavor, conf, "model_data", "sparkml")
    try:
        sparkml = importlib.import_module("modelport.runtimes.sparkml.flavor")
    except ModuleNotFoundError as exc:
        if exc.name != "modelport.runtimes.sparkml.flavor":
            raise
        raise ModelLoadError(
            f"{path}: holds an MLflow spark model, but this modelport build has no Spark ML flavor"
        ) from None
    predictor: Predictor = sparkml.load(target, config)
    return predictor


def _tensor_datatype(where: str, dtype: str) -> str:
    try:
        return datatype_of(np.dtype(dtype))
    except (TypeError, ValueError):
        raise ModelLoadError(f"{where}: tensor dtype '{dtype}' has no Open Inference Protocol datatype") from None


def _parse_specs(where: str, raw: Any) -> tuple[str, list[TensorSpec]] | None:
    """MLflow's schema JSON as ("columns" | "tensors", specs); None when absent."""
    if not raw:
        return None
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise ModelLoadError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(entries, list) or not entries:
        return None
    tensors = [e.get("type") == "tensor" for e in entries]
    if any(tensors) and not all(tensors):
        raise ModelLoadError(f"{where}: mixes tensor and column specs, which MLflow does not write")
    specs: list[TensorSpec] = []
    if all(tensors):
        for i, entry in enumerate(entries):
            ts = entry.get("tensor-spec") or {}
            name = str(entry.get("name") or ("input" if len(entries) == 1 else f"input_{i}"))
            shape = tuple(int(d) for d in ts.get("shape", (-1,)))
            specs.append(TensorSpec(name, _tensor_datatype(f"{where}: tensor '{name}'", str(ts.get("dtype"))), shape))
        return "tensors", specs
    for i, entry in enumerate(entries):
        name = str(entry.get("name", i))
        kind = entry.get("type")
        if not isinstance(kind, str) or kind not in COLUMN_TYPES:
            raise ModelLoadError(
                f"{where}: column '{name}' has MLflow type {kind!r}, which modelport does not serve; "
                f"supported column types: {', '.join(COLUMN_TYPES)}"
            )
        specs.append(TensorSpec(name, COLUMN_TYPES[kind], (-1,)))
    return "columns", specs


def _fit_shape(spec: TensorSpec, native: TensorSpec) -> TensorSpec | None:
    """``spec`` if its shape fits the native input's, the native shape for (-1,) vs (-1, 1), else None."""
    if len(spec.shape) == len(native.shape):
        if all(a == b or -1 in (a, b) for a, b in zip(spec.shape, native.shape, strict=True)):
            return spec
        return None
    if spec.shape == (-1,) and native.shape in ((-1, 1), (-1, -1)):
        return TensorSpec(spec.name, spec.datatype, (-1, 1))
    return None


class MlflowPredictor:
    """The native predictor, seen through the MLmodel's input signature."""

    def __init__(
        self, native: Predictor, flavor: str, signature: dict[str, Any], source: str, mlflow_version: Any
    ) -> None:
        self.native = native
        self.source = source
        self._stack: tuple[str, list[str], np.dtype[Any]] | None = None  # (native input, columns, dtype)
        self._rename: dict[str, str] | None = None  # served name -> native name
        own = native.signature
        parsed = _parse_specs(f"{source}/MLmodel signature.inputs", signature.get("inputs"))
        inputs = own.inputs
        if parsed is not None:
            kind, specs = parsed
            inputs = self._fit(kind, specs, own)
        self.signature = Signature(tuple(inputs), own.outputs)
        info = dict(getattr(native, "info", {}) or {})
        info["mlflow"] = {
            "flavor": flavor,
            "mlflow_version": mlflow_version,
            "signature": {k: v for k, v in signature.items() if k in ("inputs", "outputs") and v},
        }
        self.info: dict[str, Any] = info
        booster = getattr(native, "booster", None)
        if booster is not None:
            self.booster = booster

    def _fit(self, kind: str, specs: list[TensorSpec], own: Signature) -> tuple[TensorSpec, ...]:
        names = [s.name for s in specs]
        own_names = own.input_names
        if set(names) == set(own_names):
            # Same tensors by name: MLflow's datatypes; a column (-1,) fed to a graph's (-1, 1) keeps the graph's shape.
            fitted = [_fit_shape(spec, own.input(spec.name)) for spec in specs]
            if all(f is not None for f in fitted):
                return tuple(f for f in fitted if f is not None)
        elif kind == "columns" and len(own.inputs) == 1 and len(own.inputs[0].shape) == 2:
            width = own.inputs[0].shape[1]
            if width in (-1, len(specs)):
                self._stack = (own.inputs[0].name, names, own.inputs[0].dtype)
                return tuple(specs)
        elif kind == "tensors" and len(specs) == 1 and len(own.inputs) == 1:
            single = _fit_shape(specs[0], own.inputs[0])
            if single is not None:
                if single.name != own.inputs[0].name:
                    self._rename = {single.name: own.inputs[0].name}
                return (single,)
        theirs = ", ".join(f"{s.name} {s.datatype}{list(s.shape)}" for s in specs)
        ours = ", ".join(f"{s.name} {s.datatype}{list(s.shape)}" for s in own.inputs)
        raise ModelLoadError(
            f"{self.source}: the MLmodel signature's inputs ({theirs}) do not fit the model's own inputs ({ours}); "
            "fix the signature or override it in modelport.toml"
        )

    def predict(self, batch: Batch) -> Batch:
        if self._stack is not None:
            name, columns, dtype = self._stack
            return self.native.predict({name: np.column_stack([batch[c] for c in columns]).astype(dtype, copy=False)})
        if self._rename is not None:
            return self.native.predict({self._rename.get(k, k): v for k, v in batch.items()})
        return self.native.predict(batch)
