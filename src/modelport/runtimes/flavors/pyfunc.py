"""MLflow models whose only loadable flavor is ``python_function``, run through mlflow itself.

A ``python_model`` (a :class:`mlflow.pyfunc.PythonModel`, pickled or "models from code") or
a ``loader_module`` is arbitrary Python that only mlflow knows how to load, so this path
needs the ``modelport[mlflow]`` extra; native flavors (:mod:`modelport.runtimes.flavors.mlflow`)
never import mlflow. The served signature is the MLmodel's (or ``[signature]`` in
modelport.toml): a column signature (or a modelport.toml one whose inputs are all one value
per row) is handed to the model as a pandas DataFrame, a tensor signature as an array (one
input) or a dict of arrays. The model's answer (DataFrame, Series, array, list or dict) is
split into the declared outputs by name, or taken whole when there is one output.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.config import CONFIG_FILE, ModelConfig
from modelport.core.errors import ModelFailed, ModelLoadError
from modelport.core.signature import Batch, Signature, TensorSpec

__all__ = ["PyfuncPredictor", "load_pyfunc"]


def load_pyfunc(path: Path, mlmodel: dict[str, Any], config: ModelConfig, parse_specs: Any) -> PyfuncPredictor:
    """Load ``path`` with ``mlflow.pyfunc.load_model``; ``parse_specs`` reads MLflow's schema JSON."""
    conf = mlmodel["flavors"].get("python_function") or {}
    # A PythonModel is pickled (python_model) or is a file ("models from code", model_code_path).
    own_code = conf.get("python_model") or conf.get("model_code_path") or not conf.get("loader_module")
    kind = "python_model" if own_code else "loader_module"
    where = f"{path / 'MLmodel'}"
    signature = mlmodel.get("signature") or {}
    parsed_in = parse_specs(f"{where} signature.inputs", signature.get("inputs"))
    parsed_out = parse_specs(f"{where} signature.outputs", signature.get("outputs"))
    inputs = config.inputs_override or (tuple(parsed_in[1]) if parsed_in else ())
    if not inputs:
        raise ModelLoadError(
            f"{where}: a python_function model needs an input signature to be served; log it with "
            f"signature= (or input_example=), or give [signature] inputs in {CONFIG_FILE}"
        )
    declared = (
        _named_outputs(signature.get("outputs"), parsed_out[1]) if parsed_out else (TensorSpec("predict", "FP64"),)
    )
    outputs = config.outputs_override or declared
    if config.inputs_override:  # given in modelport.toml: columns when every input is one value per row
        columns = all(len(spec.shape) == 1 for spec in inputs)
    else:
        columns = parsed_in is not None and parsed_in[0] == "columns"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # mlflow 3 warns about its own type hints on import
            import mlflow.pyfunc
    except ImportError:
        raise ModelLoadError(
            f"{where}: the model's only loadable flavor is python_function ({kind}), which needs mlflow; "
            "install it with: pip install 'modelport[mlflow]'"
        ) from None
    try:
        model = mlflow.pyfunc.load_model(str(path))
    except Exception as exc:
        raise ModelLoadError(
            f"{path}: mlflow could not load the python_function model: {type(exc).__name__}: {exc}"
        ) from None
    return PyfuncPredictor(model, Signature(tuple(inputs), tuple(outputs)), columns, kind, str(path), mlmodel)


def _named_outputs(raw: Any, specs: list[TensorSpec]) -> tuple[TensorSpec, ...]:
    """Unnamed output tensors (an array answer) are served as ``predict`` (or ``output_<i>``)."""
    entries = json.loads(raw) if isinstance(raw, str) else raw
    out = []
    for i, (entry, spec) in enumerate(zip(entries, specs, strict=True)):
        if entry.get("name"):
            out.append(spec)
        else:
            out.append(TensorSpec("predict" if len(specs) == 1 else f"output_{i}", spec.datatype, spec.shape))
    return tuple(out)


class PyfuncPredictor:
    """``model.predict`` on a DataFrame (column signature) or arrays (tensor signature)."""

    # mlflow and the model's own code may start threads or runtimes a forked worker cannot inherit.
    fork_safe = False
    user_code = True  # see flavors.runs_user_code

    def __init__(
        self, model: Any, signature: Signature, columns: bool, kind: str, source: str, mlmodel: dict[str, Any]
    ) -> None:
        self.model = model
        self.signature = signature
        self.source = source
        self._columns = columns
        self._outputs = [(s.name, s.dtype) for s in signature.outputs]
        self.info: dict[str, Any] = {
            "mlflow": {
                "flavor": "python_function",
                "loader": kind,
                "loader_module": (mlmodel["flavors"].get("python_function") or {}).get("loader_module"),
                "mlflow_version": mlmodel.get("mlflow_version"),
                "signature": {k: v for k, v in (mlmodel.get("signature") or {}).items() if k in ("inputs", "outputs")},
            },
            "runtime": {s.name: "mlflow.pyfunc" for s in signature.outputs},
        }

    def _request(self, batch: Batch) -> Any:
        if self._columns:
            import pandas as pd

            return pd.DataFrame({name: batch[name] for name in self.signature.input_names})
        if len(batch) == 1:
            return next(iter(batch.values()))
        return dict(batch)

    def predict(self, batch: Batch) -> Batch:
        result = self.model.predict(self._request(batch))
        named = _by_name(result)
        out: Batch = {}
        if named is None or (len(self._outputs) == 1 and self._outputs[0][0] not in named):
            if len(self._outputs) != 1:
                raise ModelFailed(
                    f"{self.source}: the model returned a {type(result).__name__} without names; "
                    f"expected the outputs {', '.join(n for n, _ in self._outputs)} by name"
                )
            values = [result] if named is None else list(named.values())
            if len(values) != 1:
                returned = ", ".join(named or {})
                declared = self._outputs[0][0]
                raise ModelFailed(f"{self.source}: the model returned {returned}; declared output: {declared}")
            name, dtype = self._outputs[0]
            out[name] = _as(name, values[0], dtype, self.source)
            return out
        missing = [n for n, _ in self._outputs if n not in named]
        if missing:
            raise ModelFailed(
                f"{self.source}: the model's answer has no {', '.join(repr(m) for m in missing)}; "
                f"it has: {', '.join(map(str, named))}"
            )
        for name, dtype in self._outputs:
            out[name] = _as(name, named[name], dtype, self.source)
        return out


def _by_name(result: Any) -> dict[str, Any] | None:
    """A DataFrame's columns or a dict's entries by name; None for an unnamed answer."""
    if isinstance(result, Mapping):
        return {str(k): v for k, v in result.items()}
    columns = getattr(result, "columns", None)
    if columns is not None and hasattr(result, "to_numpy"):
        return {str(c): result[c].to_numpy() for c in columns}
    return None


def _as(name: str, value: Any, dtype: np.dtype[Any], source: str) -> np.ndarray:
    arr = np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value)
    if dtype.kind == "O":
        return arr.astype(object, copy=False)
    try:
        return np.ascontiguousarray(arr, dtype=dtype)
    except (TypeError, ValueError):
        raise ModelFailed(
            f"{source}: output '{name}' holds {arr.dtype} values that do not convert to {dtype}; "
            "declare its type in the model's output signature"
        ) from None
