"""TensorFlow SavedModels and Keras 3 ``.keras`` files, served by TensorFlow itself.

A SavedModel directory (``saved_model.pb`` + ``variables/``; in the TF Serving layout each
numeric folder is a version, as for every flavor) is served through its serving signatures:
``serving_default`` unless ``[tensorflow] signature_name`` in modelport.toml names another,
and any other signature per request (V1 ``signature_name``, V2 parameter ``signature_name``).
A ``.keras`` file is loaded by Keras (TensorFlow backend) and traced once into the same kind
of signature, so both go through one call path. TensorFlow is imported here, inside ``load``,
so ``import modelport`` stays free of it; its thread pools do not survive ``fork``, so the
server starts its workers before loading (server/run.py, ``FORK_UNSAFE``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.config import CONFIG_FILE, ModelConfig
from modelport.core.errors import ModelLoadError
from modelport.core.signature import DATATYPES_BY_TYPE_NAME, Batch, Signature, TensorSpec

__all__ = ["DEFAULT_SIGNATURE", "TensorFlowPredictor", "load"]

DEFAULT_SIGNATURE = "serving_default"

# tf.DType.name -> V2 datatype (DT_STRING is BYTES; TF has no separate text type).
_TF_TYPES = DATATYPES_BY_TYPE_NAME
# The DT_* names saved_model_cli prints.
_DT_NAMES = {
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "float16": "DT_HALF",
    "string": "DT_STRING",
    "bool": "DT_BOOL",
}


def _dt_name(dtype_name: str) -> str:
    return _DT_NAMES.get(dtype_name, "DT_" + dtype_name.upper())


def _datatype(where: str, dtype: Any) -> str:
    name = getattr(dtype, "name", str(dtype))
    if name in _TF_TYPES:
        return _TF_TYPES[name]
    supported = ", ".join(_dt_name(t) for t in _TF_TYPES)
    raise ModelLoadError(f"{where} has dtype {_dt_name(name)}, which modelport does not serve; supported: {supported}")


def _shape(where: str, shape: Any) -> tuple[int, ...]:
    dims = shape.as_list() if getattr(shape, "rank", None) is not None else None
    if dims is None:
        raise ModelLoadError(
            f"{where} has unknown rank; modelport needs the number of dimensions (re-export it "
            "with a tf.TensorSpec that gives a shape, None for any size)"
        )
    return tuple(-1 if d is None else int(d) for d in dims)


class _TFSignature:
    """One signature: names, TF dtypes and a call from numpy feeds to numpy outputs."""

    def __init__(
        self,
        name: str,
        source: str,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        call: Callable[[dict[str, Any]], Mapping[str, Any]],
    ) -> None:
        where = f"{source}: signature '{name}'"
        self.name = name
        self._call = call
        self._feeds = [(n, inputs[n].dtype) for n in sorted(inputs)]
        specs_in = [
            TensorSpec(n, _datatype(f"{where} input '{n}'", s.dtype), _shape(f"{where} input '{n}'", s.shape))
            for n, s in sorted(inputs.items())
        ]
        specs_out = [
            TensorSpec(n, _datatype(f"{where} output '{n}'", s.dtype), _shape(f"{where} output '{n}'", s.shape))
            for n, s in sorted(outputs.items())
        ]
        if not specs_in or not specs_out:
            raise ModelLoadError(f"{where} has no {'inputs' if not specs_in else 'outputs'}; modelport cannot serve it")
        self.signature = Signature(tuple(specs_in), tuple(specs_out))
        self.shown = {  # what saved_model_cli show --all prints for it
            "inputs": {n: _tensor_info(s) for n, s in sorted(inputs.items())},
            "outputs": {n: _tensor_info(s) for n, s in sorted(outputs.items())},
        }

    def run(self, batch: Batch) -> Batch:
        import tensorflow as tf

        feeds = {}
        for name, dtype in self._feeds:
            value = batch[name]
            if value.dtype.kind == "O":  # str and bytes alike become DT_STRING (str as UTF-8)
                value = np.array([v.encode() if isinstance(v, str) else v for v in value.reshape(-1)], dtype=object)
                value = value.reshape(batch[name].shape)
            feeds[name] = tf.convert_to_tensor(value, dtype=dtype)
        result = self._call(feeds)
        return {name: result[name].numpy() for name in self.signature.output_names}


def _tensor_info(spec: Any) -> dict[str, Any]:
    dims = spec.shape.as_list() if spec.shape.rank is not None else None
    return {
        "dtype": _dt_name(spec.dtype.name),
        "shape": "unknown_rank" if dims is None else "(" + ", ".join("-1" if d is None else str(d) for d in dims) + ")",
    }


def _show_all(signatures: Mapping[str, _TFSignature]) -> list[str]:
    """Lines in the form ``saved_model_cli show --all`` prints each signature's tensors."""
    lines = []
    for name, sig in sorted(signatures.items()):
        lines.append(f"signature_def['{name}']:")
        for kind in ("inputs", "outputs"):
            for key, info in sig.shown[kind].items():
                lines.append(f"  {kind}['{key}'] dtype: {info['dtype']} shape: {info['shape']}")
    return lines


def _saved_model(path: Path, source: str) -> tuple[dict[str, _TFSignature], dict[str, str], Any]:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # TF raises OSError, ValueError or its own errors on a damaged directory
        raise ModelLoadError(f"{source}: not a loadable SavedModel ({type(exc).__name__}: {exc})") from None
    signatures: dict[str, _TFSignature] = {}
    skipped: dict[str, str] = {}
    for name, fn in loaded.signatures.items():
        _, kwargs = fn.structured_input_signature
        outputs = fn.structured_outputs
        if not isinstance(outputs, Mapping):
            skipped[name] = "its outputs are not named"
            continue

        def call(feeds: dict[str, Any], fn: Any = fn) -> Mapping[str, Any]:
            result: Mapping[str, Any] = fn(**feeds)
            return result

        try:
            signatures[name] = _TFSignature(name, source, kwargs, outputs, call)
        except ModelLoadError as exc:
            skipped[name] = exc.message
    return signatures, skipped, loaded


def _keras(path: Path, source: str) -> tuple[dict[str, _TFSignature], dict[str, str], Any]:
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise ModelLoadError(
            f"{source}: Keras runs the {keras.backend.backend()} backend here; modelport serves .keras files "
            "with the TensorFlow backend (unset KERAS_BACKEND or set it to tensorflow)"
        )
    try:
        model = keras.saving.load_model(str(path), compile=False)
    except Exception as exc:
        raise ModelLoadError(f"{source}: not a loadable Keras model ({type(exc).__name__}: {exc})") from None
    try:
        inputs = list(model.inputs)
        outputs = list(model.outputs)
    except (AttributeError, ValueError):
        inputs = outputs = []
    if not inputs or not outputs:
        raise ModelLoadError(
            f"{source}: the Keras model has no defined inputs (a subclassed or unbuilt model); save a functional or "
            "Sequential model built with keras.Input"
        )
    names = [t.name for t in inputs]
    out_names = list(getattr(model, "output_names", None) or [])  # functional models; Sequential has none
    if len(out_names) != len(outputs):
        out_names = [_layer_name(t, f"output_{i}") for i, t in enumerate(outputs)]
    try:
        structure = model.input if isinstance(model.input, dict) else None
    except AttributeError:  # a Sequential model that was never called on a tensor: one plain input
        structure = None
    specs = {
        n: tf.TensorSpec([None if d is None else d for d in t.shape], t.dtype, name=n)
        for n, t in zip(names, inputs, strict=True)
    }

    def forward(feeds: dict[str, Any]) -> dict[str, Any]:
        if structure is not None:
            args: Any = {k: feeds[t.name] for k, t in structure.items()}
        elif len(names) == 1:
            args = feeds[names[0]]
        else:
            args = [feeds[n] for n in names]
        result = model(args, training=False)
        if isinstance(result, Mapping):
            return dict(result)
        if isinstance(result, list | tuple):
            return dict(zip(out_names, result, strict=True))
        return {out_names[0]: result}

    concrete = tf.function(forward, autograph=False).get_concrete_function(specs)
    out_specs = {k: tf.TensorSpec(v.shape, v.dtype) for k, v in concrete.structured_outputs.items()}
    signature = _TFSignature(DEFAULT_SIGNATURE, source, specs, out_specs, concrete)
    return {DEFAULT_SIGNATURE: signature}, {}, model


def _layer_name(tensor: Any, fallback: str) -> str:
    """The name of the layer that made a Keras tensor (``dense_1``), what Keras itself calls that output."""
    history = getattr(tensor, "_keras_history", None)
    name = getattr(getattr(history, "operation", None), "name", None)
    return name if isinstance(name, str) and name else fallback


def _artifact(path: Path) -> Path:
    if path.is_file() or (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
        return path
    found = sorted(path.glob("*.keras"))
    if len(found) == 1:
        return found[0]
    raise ModelLoadError(
        f"{path}: neither a SavedModel directory (saved_model.pb + variables/) nor a directory with one .keras file"
    )


def load(path: Path, config: ModelConfig) -> TensorFlowPredictor:
    # TensorFlow's C++ start-up notices (oneDNN, CPU features) are not the operator's business; set it to 0 to see them.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    artifact = _artifact(path)
    source = str(artifact)
    settings = config.extra.get("tensorflow") or {}
    where = config.path or str(path / CONFIG_FILE)
    if not isinstance(settings, dict) or set(settings) - {"signature_name"}:
        raise ModelLoadError(f'{where}: [tensorflow] takes signature_name = "NAME" only; got {settings!r}')
    chosen = settings.get("signature_name", DEFAULT_SIGNATURE)
    if artifact.is_file():
        if artifact.suffix.lower() != ".keras":
            raise ModelLoadError(f"{source}: the tensorflow flavor serves SavedModel directories and .keras files")
        signatures, skipped, keep = _keras(artifact, source)
        kind = "keras"
    else:
        signatures, skipped, keep = _saved_model(artifact, source)
        kind = "saved_model"
    if chosen not in signatures:
        why = f" ({skipped[chosen]})" if chosen in skipped else ""
        listed = ", ".join(sorted(signatures)) or "none"
        raise ModelLoadError(f"{source}: signature '{chosen}' cannot be served{why}; servable signatures: {listed}")
    return TensorFlowPredictor(signatures, chosen, skipped, kind, source, keep)


class TensorFlowPredictor:
    """The chosen signature as a predictor; ``signatures`` holds one predictor per servable signature."""

    fork_safe = False  # TensorFlow's thread pools do not survive fork

    def __init__(
        self,
        signatures: dict[str, _TFSignature],
        chosen: str,
        skipped: dict[str, str],
        kind: str,
        source: str,
        keep: Any,
    ) -> None:
        self._keep = keep  # the loaded object owns the variables the functions read
        self._sig = signatures[chosen]
        self.signature = self._sig.signature
        self.signature_name = chosen
        self.source = source
        import tensorflow as tf

        self.info: dict[str, Any] = {
            "format": kind,
            "tensorflow": tf.__version__,
            "signature_name": chosen,
            "signature_def": _show_all(signatures),
            "runtime": {o: "tensorflow" for o in self.signature.output_names},
        }
        if skipped:
            self.info["signatures_not_served"] = dict(skipped)
        self.signatures: dict[str, TensorFlowPredictor] = {chosen: self}
        for name, sig in signatures.items():
            if name != chosen:
                self.signatures[name] = TensorFlowPredictor._one(sig, self)

    @classmethod
    def _one(cls, sig: _TFSignature, parent: TensorFlowPredictor) -> TensorFlowPredictor:
        other = cls.__new__(cls)
        other._keep = parent._keep
        other._sig = sig
        other.signature = sig.signature
        other.signature_name = sig.name
        other.source = parent.source
        other.info = {**parent.info, "signature_name": sig.name}
        other.info["runtime"] = {o: "tensorflow" for o in sig.signature.output_names}
        other.signatures = parent.signatures
        return other

    def predict(self, batch: Batch) -> Batch:
        return self._sig.run(batch)
