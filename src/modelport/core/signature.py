"""A model's contract: named tensors with Open Inference Protocol V2 datatypes.

Every surface derives its checks from a :class:`Signature`: the V1/V2 metadata
endpoints print it, the codecs coerce request values with the :class:`InputPlan`
built from it once at load time, and the web form and OpenAPI schema are made from it.
"""

from __future__ import annotations

import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelport.core.errors import InvalidInput

__all__ = [
    "DATATYPES",
    "NULL",
    "Batch",
    "InputPlan",
    "Signature",
    "TensorSpec",
    "batch_rows",
    "datatype_of",
]

NULL_BITS = 0x7FF8_0000_6E75_6C6C
NULL: float = float(np.array([NULL_BITS], dtype=np.uint64).view(np.float64)[0])
"""A request's ``null`` in a float input: a quiet NaN whose payload spells "null".

It is NaN to every model; the Spark ML runtime tells it from a real NaN (Spark's null vs NaN)."""

SPECIAL_FLOATS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
"""The JSON strings that stand for non-finite numbers, in requests and answers alike."""

Batch = dict[str, np.ndarray]
"""Columnar data: input or output name -> array whose axis 0 is the row."""

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

_BY_DTYPE = {v: k for k, v in DATATYPES.items() if k != "BYTES"}

#: V2 datatypes by numpy's type name, "string" for text: the names TensorFlow (``tf.DType.name``)
#: and, but for float/double, onnxruntime give their tensor types.
DATATYPES_BY_TYPE_NAME: dict[str, str] = {str(dtype): name for dtype, name in _BY_DTYPE.items()} | {"string": "BYTES"}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The V2 datatype name for a numpy dtype; text and objects are BYTES."""
    dtype = np.dtype(dtype)
    if dtype in _BY_DTYPE:
        return _BY_DTYPE[dtype]
    if dtype.kind in "OUSTV":
        return "BYTES"
    raise ValueError(f"numpy dtype {dtype} has no Open Inference Protocol datatype")


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor. ``shape`` uses -1 for a free dimension; axis 0 is the row.

    ``labels`` names the entries of the last axis when they have names, such as the
    classes of a probability output; ``unit`` is what a number measures (declared in
    modelport.toml, shown by metadata and the web page).
    """

    name: str
    datatype: str
    shape: tuple[int, ...] = (-1,)
    labels: tuple[Any, ...] | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.datatype not in DATATYPES:
            raise ValueError(f"tensor '{self.name}': datatype '{self.datatype}' is not one of {', '.join(DATATYPES)}")
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    @property
    def dtype(self) -> np.dtype[Any]:
        return DATATYPES[self.datatype]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}
        parameters: dict[str, Any] = {}
        if self.labels is not None:
            parameters["labels"] = list(self.labels)
        if self.unit is not None:
            parameters["unit"] = self.unit
        if parameters:
            out["parameters"] = parameters
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        try:
            name = str(data["name"])
            datatype = str(data.get("datatype", data.get("type", "FP64"))).upper()
        except KeyError as exc:
            raise ValueError(f"tensor spec {dict(data)!r} needs a 'name'") from exc
        shape = tuple(int(d) for d in data.get("shape", (-1,)))
        labels = data.get("labels") or (data.get("parameters") or {}).get("labels")
        unit = data.get("unit") or (data.get("parameters") or {}).get("unit")
        if unit is not None and not isinstance(unit, str):
            raise ValueError(f"tensor '{name}': unit must be a string, got {unit!r}")
        return cls(name, datatype, shape, tuple(labels) if labels is not None else None, unit)


@dataclass(frozen=True)
class Signature:
    """The inputs a model takes and the outputs it returns, in order."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    _by_name: dict[str, TensorSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        for kind, specs in (("input", self.inputs), ("output", self.outputs)):
            names = [s.name for s in specs]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} names in signature: {', '.join(dupes)}")

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]

    def input(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def output(self, name: str) -> TensorSpec:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def select_outputs(self, names: Iterable[str]) -> Signature:
        wanted = list(names)
        return Signature(self.inputs, tuple(self.output(n) for n in wanted))

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        return cls(
            tuple(TensorSpec.from_dict(d) for d in data.get("inputs", ())),
            tuple(TensorSpec.from_dict(d) for d in data.get("outputs", ())),
        )


def batch_rows(batch: Mapping[str, np.ndarray]) -> int:
    """Rows in a Batch (0 for an empty one); assumes it was validated."""
    for arr in batch.values():
        return int(arr.shape[0]) if arr.ndim else 1
    return 0


class InputPlan:
    """Coerces request values to a model's inputs; built once per model.

    The checks are the ones a client can act on: a missing or unknown input, a value
    of the wrong kind (text where numbers are required), a shape that does not fit
    the signature, ragged rows, or inputs with different row counts.
    """

    def __init__(self, model: str, signature: Signature, compute_datatype: str | None = None) -> None:
        self.model = model
        self.signature = signature
        self.compute_datatype = compute_datatype
        # Float inputs whose values must fit a narrower float than their own datatype (see _check_range).
        narrow = DATATYPES.get(compute_datatype or "")
        self._limits = {
            s.name: narrow
            for s in signature.inputs
            if narrow is not None and narrow.kind == "f" and s.dtype.kind == "f" and s.dtype.itemsize > narrow.itemsize
        }
        self.specs = {s.name: s for s in signature.inputs}
        self.names = tuple(self.specs)
        self._expected = ", ".join(self.names)
        # In-process callers mostly pass arrays that already fit; those skip the general path.
        self._ready = {s.name: _ready_check(s) for s in signature.inputs}

    def _fail(self, message: str) -> InvalidInput:
        return InvalidInput(f"model '{self.model}': {message}")

    def coerce(self, name: str, value: Any, datatype: str | None = None) -> np.ndarray:
        """One input's values (nested lists or an array) as an array of the signature's dtype."""
        spec = self._spec(name)
        if datatype is not None:
            self._check_datatype(spec, datatype)
        arr = self._to_array(spec, value)
        return self._fit_shape(spec, arr)

    def _check_datatype(self, spec: TensorSpec, datatype: Any) -> None:
        """Numbers convert among numeric types; text and numbers never mix."""
        if datatype == spec.datatype:
            return
        if not isinstance(datatype, str):
            raise self._fail(
                f"input '{spec.name}' has datatype {_quote(datatype)}; 'datatype' must be a string, "
                f"one of {', '.join(DATATYPES)}"
            )
        if datatype not in DATATYPES:
            raise self._fail(
                f"input '{spec.name}' has datatype '{datatype}', which is not one of {', '.join(DATATYPES)}"
            )
        if (datatype == "BYTES") != (spec.datatype == "BYTES"):
            raise self._fail(f"input '{spec.name}' must have datatype {spec.datatype}, got {datatype}")

    def coerce_shaped(self, name: str, data: Any, datatype: str | None, shape: Sequence[int]) -> np.ndarray:
        """A V2-style tensor: ``data`` (flat or nested, row-major) with an explicit ``shape``."""
        spec = self._spec(name)
        if datatype is not None:
            self._check_datatype(spec, datatype)
        arr = self._to_array(spec, data)
        try:
            dims = [int(d) for d in shape]
        except (TypeError, ValueError):
            raise self._fail(f"input '{name}' has shape {shape!r}; expected a list of integers") from None
        size = 1
        for d in dims:
            size *= d
        if arr.size != size or any(d < 0 for d in dims):
            raise self._fail(
                f"input '{name}' has shape {dims}, which needs {size} values, but its data holds {arr.size}"
            )
        return self._fit_shape(spec, arr.reshape(dims))

    def _spec(self, name: Any) -> TensorSpec:
        spec = self.specs.get(name) if isinstance(name, str) else None
        if spec is None:
            what = f"'{name}'" if isinstance(name, str) else f"name {_quote(name)} (names are strings)"
            raise self._fail(f"unknown input {what}; the model's inputs are: {self._expected}")
        return spec

    def _check_range(self, name: str, arr: np.ndarray, target: np.dtype[Any]) -> None:
        """Finite values too large for ``target`` would become infinities there: refuse them, naming the input."""
        if not arr.size:
            return
        top = np.finfo(target).max
        with np.errstate(invalid="ignore"):
            over = np.abs(arr) > top
        if over.any():
            over &= np.isfinite(arr)  # infinities stay what they are: the model decides about them
        if over.any():
            value = float(arr[over].flat[0])
            raise self._fail(
                f"input '{name}' has value {value:g}, beyond the range of {datatype_of(target)} "
                f"(±{float(top):.4g}) that the model computes in"
            )

    def _to_array(self, spec: TensorSpec, value: Any) -> np.ndarray:
        name = spec.name
        if spec.datatype == "BYTES":
            return self._to_text(spec, value)
        try:
            if type(value) is list and value and type(value[0]) is float and spec.dtype.kind == "f":
                arr = _floats(value)
            else:
                arr = value if isinstance(value, np.ndarray) else np.asarray(value)
        except ValueError as exc:
            raise self._fail(f"input '{name}' has ragged rows (not every row has the same length): {exc}") from None
        kind = arr.dtype.kind
        target = spec.dtype
        if kind in "US" and target.kind == "f" and arr.size and set(arr.ravel().tolist()) <= SPECIAL_FLOATS.keys():
            return arr.astype(target)  # JSON has no NaN/Infinity literals: "NaN", "Infinity", "-Infinity"
        if kind in "USO":
            if kind == "O":
                # None stands for a missing value; it becomes NaN where the dtype has one.
                try:
                    converted = arr.astype(np.float64) if target.kind == "f" else None
                except (TypeError, ValueError):
                    converted = None
                if converted is not None:
                    if target.itemsize < 8:
                        self._check_range(name, converted, target)
                    nulls = np.fromiter((v is None for v in arr.ravel()), bool, arr.size).reshape(arr.shape)
                    if target == np.float64 and nulls.any():
                        converted[nulls] = NULL
                    return converted.astype(target, copy=False)
            example = _first_non_number(arr)
            raise self._fail(
                f"input '{name}' must be {spec.datatype} numbers, got {type(example).__name__} value {example!r}"
            )
        if arr.dtype == target:
            return arr
        if target.kind in "iu" and kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise self._fail(f"input '{name}' must be {spec.datatype} integers, got non-integer values")
        if target.kind in "iu" and kind in "iu":
            info = np.iinfo(target)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise self._fail(f"input '{name}' has values outside the {spec.datatype} range")
        if target.kind == "b" and kind != "b":
            if arr.size and not np.isin(arr, (0, 1)).all():
                raise self._fail(f"input '{name}' must be BOOL (true/false or 0/1)")
        if target.kind == "f" and kind in "fc" and arr.dtype.itemsize > target.itemsize:
            self._check_range(name, arr, target)
        return arr.astype(target)

    def _to_text(self, spec: TensorSpec, value: Any) -> np.ndarray:
        if isinstance(value, np.ndarray) and value.dtype.kind in "OUST":
            arr = value.astype(object) if value.dtype.kind != "O" else value
        else:
            try:
                arr = np.array(value, dtype=object)
            except ValueError as exc:
                raise self._fail(f"input '{spec.name}' has ragged rows: {exc}") from None
        if arr.size:
            flat = arr.reshape(-1)
            for i, v in enumerate(flat):
                if isinstance(v, bytes):
                    try:
                        flat[i] = v.decode("utf-8")
                    except UnicodeDecodeError:
                        pass  # binary data stays bytes, as a {"b64": ...} value does; a model for text gets text
                elif isinstance(v, dict) and "b64" in v:
                    flat[i] = _b64(spec.name, v["b64"], self._fail)
                elif isinstance(v, list | dict):
                    raise self._fail(f"input '{spec.name}' has ragged rows or nested values: {v!r}")
        return arr

    def _fit_shape(self, spec: TensorSpec, arr: np.ndarray) -> np.ndarray:
        want = spec.shape
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim == len(want) + 1 and arr.shape[-1] == 1:
            arr = arr.reshape(arr.shape[:-1])
        elif arr.ndim + 1 == len(want) and want[-1] == 1:
            arr = arr.reshape((*arr.shape, 1))
        elif arr.ndim == 1 and len(want) == 2 and want[1] > 0 and arr.shape[0] == want[1]:
            # A single row sent without its batch dimension.
            arr = arr.reshape(1, -1)
        if arr.ndim != len(want) or any(w != -1 and w != g for w, g in zip(want, arr.shape, strict=True)):
            raise self._fail(f"input '{spec.name}' has shape {list(arr.shape)}, expected {list(want)} (-1 = any size)")
        return arr

    def check(self, batch: Mapping[str, np.ndarray]) -> Batch:
        """Whole-request checks: every input present, none unknown, equal row counts, not empty."""
        missing = [n for n in self.names if n not in batch]
        if missing:
            raise self._fail(
                f"missing input{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}; "
                f"the model's inputs are: {self._expected}"
            )
        extra = [n for n in batch if n not in self.specs]
        if extra:
            raise self._fail(
                f"unknown input{'s' if len(extra) > 1 else ''} {', '.join(repr(e) for e in extra)}; "
                f"the model's inputs are: {self._expected}"
            )
        rows = {n: int(a.shape[0]) for n, a in batch.items()}
        if len(set(rows.values())) > 1:
            detail = ", ".join(f"'{n}': {r}" for n, r in rows.items())
            raise self._fail(f"inputs have different numbers of rows ({detail})")
        if not rows or next(iter(rows.values())) == 0:
            raise self._fail("the request has no rows (empty batch)")
        self._check_limits(batch)
        return dict(batch)

    def _check_limits(self, batch: Mapping[str, np.ndarray]) -> None:
        for name, narrow in self._limits.items():
            arr = batch.get(name)
            if arr is not None and arr.dtype.kind == "f":
                self._check_range(name, arr, narrow)

    def coerce_batch(self, values: Mapping[str, Any]) -> Batch:
        """Coerce every value and run the whole-request checks."""
        out = {}
        ready = self._ready
        rows = -1
        same_rows = True
        for name, value in values.items():
            fits = ready.get(name)
            arr = fits(value) if fits is not None else None
            if arr is None:
                arr = self.coerce(name, value)
            out[name] = arr
            n = arr.shape[0]
            if rows != n:
                same_rows = rows == -1
                rows = n
        if same_rows and rows > 0 and len(out) == len(self.names):
            if self._limits:
                self._check_limits(out)
            return out  # every name is known (or coerce would have raised), all present, equal rows
        return self.check(out)


def _ready_check(spec: TensorSpec) -> Any:
    """A function returning ``value`` when it is already an array of the spec's dtype and shape, else None.

    Text must be an object array of ``str`` (bytes and ``{"b64": ...}`` need the general path).
    """
    ndim = len(spec.shape)
    if ndim == 0:  # a scalar input: the general path gives it its row axis
        return lambda value: None
    fixed = tuple((axis, size) for axis, size in enumerate(spec.shape) if size != -1)
    dtype = np.dtype(object) if spec.datatype == "BYTES" else spec.dtype
    text = spec.datatype == "BYTES"

    def ready(value: Any) -> np.ndarray | None:
        if type(value) is not np.ndarray or value.dtype != dtype or value.ndim != ndim:
            return None
        shape = value.shape
        for axis, size in fixed:
            if shape[axis] != size:
                return None
        if text:
            for v in value.flat:
                if type(v) is not str:
                    return None
        return value

    return ready


def _b64(name: str, text: Any, fail: Any) -> Any:
    """TF Serving's ``{"b64": ...}`` value: text when it is UTF-8, else raw bytes."""
    import base64
    import binascii

    try:
        raw = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise fail(f"input '{name}' has a 'b64' value that is not valid base64") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _first_non_number(arr: np.ndarray) -> Any:
    """The value to quote in the error: the first that is not a number, even as text."""
    items = arr.reshape(-1).tolist()
    for v in items:
        if isinstance(v, str):
            try:
                float(v)
            except ValueError:
                return v
        elif not isinstance(v, int | float) or isinstance(v, bool):
            return v
    return items[0] if items else None


def _quote(value: Any) -> str:
    """A short rendering of a client's value for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _floats(values: list[Any]) -> np.ndarray:
    """A flat JSON list of numbers as float64, ~40 % faster than ``np.asarray`` (1,000 rows x 30 floats: 3.2 vs
    5.4 ms on a loaded machine): ``array.array`` converts without numpy's per-element type discovery. Anything
    else in the list (None, text, nested rows, an int past float range) takes ``np.asarray``'s way, unchanged."""
    try:
        return np.frombuffer(array.array("d", values), dtype=np.float64)
    except (TypeError, OverflowError):
        return np.asarray(values)
