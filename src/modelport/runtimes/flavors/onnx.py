"""ONNX models run by onnxruntime.

The signature is the graph's: one input per graph input, one output per graph output,
symbolic dimensions as -1. Classifiers converted by skl2onnx end in a ZipMap that
turns the probability tensor into a list of ``{label: p}`` dicts, one per row; serving
that would cost a Python dict per row, so when the ``onnx`` package is installed the
ZipMap is cut off at load time and its input tensor is served under the ZipMap's output
name, as an FP64 ``[-1, n_classes]`` array labelled with the classes. Without ``onnx``
the dicts are converted after each run (slower, same answer).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.config import ModelConfig
from modelport.core.errors import ModelLoadError
from modelport.core.signature import DATATYPES_BY_TYPE_NAME, Batch, Signature, TensorSpec

__all__ = ["OnnxPredictor", "load"]

# onnxruntime's type strings, "tensor(<this>)", to V2 datatypes: numpy's names but float and double.
_ORT_NAMES = {"float32": "float", "float64": "double"}
_ORT_TYPES = {_ORT_NAMES.get(name, name): datatype for name, datatype in DATATYPES_BY_TYPE_NAME.items()}

THREADS_ENV = "MODELPORT_ONNX_THREADS"


def _datatype(where: str, ort_type: str) -> str:
    if ort_type.startswith("tensor(") and ort_type.endswith(")"):
        inner = ort_type[len("tensor(") : -1]
        if inner in _ORT_TYPES:
            return _ORT_TYPES[inner]
    supported = ", ".join(f"tensor({t})" for t in _ORT_TYPES)
    raise ModelLoadError(f"{where} has ONNX type {ort_type}, which modelport does not serve; supported: {supported}")


def _shape(dims: list[Any]) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in dims)


def _session_options(ort: Any, source: str) -> Any:
    """One intra-op thread by default: on 2 shared cores it was as fast as two or faster for
    1-1000 rows (benchmarks/onnx_threads.py), and concurrent requests use the other core.
    ``MODELPORT_ONNX_THREADS`` overrides it (0 = all cores)."""
    opts = ort.SessionOptions()
    value = os.environ.get(THREADS_ENV, "1") or "1"
    try:
        threads = int(value)
    except ValueError:
        raise ModelLoadError(
            f"{source}: {THREADS_ENV}={value!r} is not a whole number of threads (0 = all cores)"
        ) from None
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


def _cut_zipmaps(raw: bytes) -> tuple[bytes, dict[str, tuple[str, tuple[Any, ...]]]]:
    """Remove ZipMap nodes that feed graph outputs.

    Returns the new model bytes and, for each cut output, the tensor that now carries
    its values and the class labels. Needs the ``onnx`` package; without it nothing is cut.
    """
    try:
        import onnx
    except ImportError:
        return raw, {}
    model = onnx.load_model_from_string(raw)
    graph = model.graph
    outputs = {o.name: o for o in graph.output}
    cut: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for node in list(graph.node):
        if node.op_type != "ZipMap" or node.output[0] not in outputs:
            continue
        labels: tuple[Any, ...] = ()
        for attr in node.attribute:
            if attr.name == "classlabels_int64s":
                labels = tuple(int(v) for v in attr.ints)
            elif attr.name == "classlabels_strings":
                labels = tuple(v.decode("utf-8") for v in attr.strings)
        source = node.input[0]
        old = outputs[node.output[0]]
        new = onnx.helper.make_tensor_value_info(source, onnx.TensorProto.FLOAT, [None, len(labels)])
        position = list(graph.output).index(old)
        graph.output.remove(old)
        graph.output.insert(position, new)
        graph.node.remove(node)
        cut[node.output[0]] = (source, labels)
    if not cut:
        return raw, {}
    return model.SerializeToString(), cut


def load(path: Path, config: ModelConfig) -> OnnxPredictor:
    if path.is_dir():
        onnx_files = sorted(path.glob("*.onnx"))
        if len(onnx_files) != 1:
            raise ModelLoadError(f"{path}: expected exactly one .onnx file in the directory, found {len(onnx_files)}")
        path = onnx_files[0]
    return OnnxPredictor(path, config)


# Graphs that end in a ZipMap come from skl2onnx and are small; bigger files (a network,
# maybe with external weights beside it) are handed to onnxruntime by path, untouched.
_CUT_LIMIT = 64 * 1024 * 1024


class OnnxPredictor:
    def __init__(self, path: Path, config: ModelConfig) -> None:
        import onnxruntime as ort

        self.source = source = str(path)
        model: str | bytes = source
        cut: dict[str, tuple[str, tuple[Any, ...]]] = {}
        try:
            if path.stat().st_size <= _CUT_LIMIT:
                raw = path.read_bytes()
                served, cut = _cut_zipmaps(raw)
                if cut:
                    model = served
        except OSError as exc:
            raise ModelLoadError(f"{source}: cannot read ONNX file: {exc}") from None
        except Exception as exc:  # onnx's parser: a DecodeError or friends on a corrupt file
            raise ModelLoadError(f"{source}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
        options = _session_options(ort, source)
        try:
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind classes (InvalidProtobuf, Fail, ...)
            raise ModelLoadError(f"{source}: not a loadable ONNX model ({type(exc).__name__}: {exc})") from None

        inputs: list[TensorSpec] = []
        self._feeds: list[tuple[str, np.dtype[Any]]] = []
        for node in self.session.get_inputs():
            datatype = _datatype(f"{source}: input '{node.name}'", node.type)
            spec = TensorSpec(node.name, datatype, _shape(node.shape))
            inputs.append(spec)
            self._feeds.append((node.name, np.dtype(object) if datatype == "BYTES" else spec.dtype))

        outputs: list[TensorSpec] = []
        self._fetch: list[str] = []  # graph tensor names to run
        self._post: list[tuple[str, Any]] = []  # (served name, converter or None)
        renamed = {source_name: (name, labels) for name, (source_name, labels) in cut.items()}
        for node in self.session.get_outputs():
            if node.name in renamed:
                name, labels = renamed[node.name]
                outputs.append(TensorSpec(name, "FP64", (-1, len(labels)), labels))
                self._post.append((name, _as_fp64))
            elif node.type.startswith("seq(map("):
                labels = self._probe_labels(node.name)
                outputs.append(TensorSpec(node.name, "FP64", (-1, len(labels)), labels))
                self._post.append((node.name, _zipmap_converter(labels)))
            else:
                datatype = _datatype(f"{source}: output '{node.name}'", node.type)
                outputs.append(TensorSpec(node.name, datatype, _shape(node.shape)))
                self._post.append((node.name, None))
            self._fetch.append(node.name)
        self.signature = Signature(tuple(inputs), tuple(outputs))
        zipmaps = any(n.type.startswith("seq(map(") for n in self.session.get_outputs())
        meta = self.session.get_modelmeta()
        self.info: dict[str, Any] = {
            "producer": meta.producer_name,
            "opset_domain": meta.domain,
            "providers": self.session.get_providers(),
            "intra_op_threads": self.session.get_session_options().intra_op_num_threads,
            "zipmap": "removed at load" if cut else ("converted per request" if zipmaps else "none"),
            "runtime": {o.name: "onnxruntime" for o in outputs},
        }

    def _probe_labels(self, name: str) -> tuple[Any, ...]:
        """Class labels of a ZipMap output when ``onnx`` is not installed: run one row of zeros."""
        feeds = {}
        for node in self.session.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in node.shape]
            dtype = TensorSpec(node.name, _datatype(f"{self.source}: input '{node.name}'", node.type)).dtype
            feeds[node.name] = np.full(shape, "", dtype=object) if dtype.kind == "O" else np.zeros(shape, dtype=dtype)
        try:
            rows = self.session.run([name], feeds)[0]
        except Exception as exc:
            raise ModelLoadError(
                f"{self.source}: output '{name}' is a ZipMap (list of dicts) and its class labels could not be "
                f"found ({exc}); install the 'onnx' package so modelport can read them, or convert the model "
                "with zipmap=False"
            ) from None
        return tuple(rows[0].keys())

    def predict(self, batch: Batch) -> Batch:
        feeds = {name: batch[name].astype(dtype, copy=False) for name, dtype in self._feeds}
        values = self.session.run(self._fetch, feeds)
        out: Batch = {}
        for (name, convert), value in zip(self._post, values, strict=True):
            out[name] = value if convert is None else convert(value)
        return out


def _as_fp64(value: np.ndarray) -> np.ndarray:
    return value.astype(np.float64)


def _zipmap_converter(labels: tuple[Any, ...]) -> Any:
    def convert(rows: list[dict[Any, float]]) -> np.ndarray:
        return np.array([[row[k] for k in labels] for row in rows], dtype=np.float64).reshape(len(rows), len(labels))

    return convert
