"""PyTorch programs: TorchScript archives (``torch.jit.save``) and ``torch.export`` programs (``.pt2``).

Both are self-contained programs, so no model class is imported to load them (a pickled
``torch.save`` module or state_dict is refused: it needs its Python class). A ``.pt2``
program carries its inputs' names, dtypes and shapes (dynamic dimensions become -1) and its
outputs' names; a TorchScript archive carries only argument names, so its signature comes
from ``[signature]`` in modelport.toml. Inputs are passed positionally in signature order;
a tensor, a tuple/list of tensors or a dict of tensors comes back as the declared outputs.

Every call runs under ``torch.inference_mode()``. Each process sets torch's intra-op
threads once at load, from ``MODELPORT_TORCH_THREADS`` (default 1, like onnxruntime: on
shared cores concurrent requests and workers use the others; 0 = torch's own default).
torch's thread pools do not survive ``fork``: predictors say so with ``fork_safe = False``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.config import CONFIG_FILE, ModelConfig
from modelport.core.errors import ModelFailed, ModelLoadError
from modelport.core.signature import Batch, Signature, TensorSpec, datatype_of

__all__ = ["THREADS_ENV", "TorchPredictor", "load"]

THREADS_ENV = "MODELPORT_TORCH_THREADS"
SUFFIXES = (".pt", ".pts", ".torchscript", ".pt2")


def _threads(torch: Any, source: str) -> int:
    value = os.environ.get(THREADS_ENV, "1") or "1"
    try:
        threads = int(value)
    except ValueError:
        raise ModelLoadError(f"{source}: {THREADS_ENV}={value!r} is not a whole number of threads (0 = all)") from None
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return int(torch.get_num_threads())


def _spec_of(torch: Any, name: str, value: Any, where: str) -> TensorSpec:
    """A V2 spec from a tensor or FakeTensor: symbolic (dynamic) dimensions become -1, axis 0 is the row."""
    try:
        dtype = torch.empty((), dtype=value.dtype).numpy().dtype
        datatype = datatype_of(dtype)
    except (TypeError, ValueError, RuntimeError):
        raise ModelLoadError(
            f"{where}: tensor '{name}' has dtype {value.dtype}, which modelport does not serve"
        ) from None
    dims = [d if isinstance(d, int) else -1 for d in value.shape]
    if dims:
        dims[0] = -1
    return TensorSpec(name, datatype, tuple(dims))


def _exported(torch: Any, path: Path) -> tuple[Any, Signature | None]:
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelLoadError(
            f"{path}: not a loadable torch.export program ({type(exc).__name__}: {exc}); "
            "expected a file written by torch.export.save"
        ) from None
    where = str(path)
    user_in = set(program.graph_signature.user_inputs)
    user_out = list(program.graph_signature.user_outputs)
    nodes = {n.name: n for n in program.graph.nodes}
    inputs, outputs = [], []
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user_in and "val" in node.meta:
            inputs.append(_spec_of(torch, node.name, node.meta["val"], where))
    for name in user_out:
        node = nodes.get(name) if name is not None else None
        if node is None or "val" not in node.meta:
            return program.module(), None  # outputs not described: the signature must come from modelport.toml
        outputs.append(_spec_of(torch, name, node.meta["val"], where))
    return program.module(), Signature(tuple(inputs), tuple(outputs))


def _scripted(torch: Any, path: Path) -> Any:
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ModelLoadError(
            f"{path}: not a TorchScript archive ({type(exc).__name__}: {str(exc).splitlines()[0]}); modelport serves "
            "programs saved with torch.jit.save(torch.jit.script(model)) or torch.export.save, not torch.save "
            "pickles, which need the model's Python class"
        ) from None


def load(path: Path, config: ModelConfig) -> TorchPredictor:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if len(files) != 1:
            raise ModelLoadError(
                f"{path}: expected exactly one PyTorch program ({', '.join('*' + s for s in SUFFIXES)}), "
                f"found {len(files)}"
            )
        path = files[0]
    import torch

    threads = _threads(torch, str(path))
    if path.suffix.lower() == ".pt2":
        module, own = _exported(torch, path)
        kind = "torch.export"
    else:
        module, own = _scripted(torch, path), None
        kind = "TorchScript"
    inputs = config.inputs_override or (own.inputs if own else ())
    outputs = config.outputs_override or (own.outputs if own else ())
    if not inputs or not outputs:
        raise ModelLoadError(
            f"{path}: a {kind} program does not record its {'outputs' if inputs else 'inputs'}' names, dtypes and "
            f"shapes; give them under [signature] in {CONFIG_FILE}, e.g. "
            'inputs = [{name = "x", datatype = "FP32", shape = [-1, 64]}]'
        )
    return TorchPredictor(torch, module, Signature(tuple(inputs), tuple(outputs)), kind, str(path), threads)


class TorchPredictor:
    fork_safe = False  # torch's thread pools do not survive fork

    def __init__(self, torch: Any, module: Any, signature: Signature, kind: str, source: str, threads: int) -> None:
        self._torch = torch
        self.module = module
        self.signature = signature
        self.source = source
        self._inputs = [(s.name, s.dtype) for s in signature.inputs]
        self._outputs = [(s.name, s.dtype) for s in signature.outputs]
        self.info: dict[str, Any] = {
            "program": kind,
            "torch": torch.__version__,
            "intra_op_threads": threads,
            "runtime": {s.name: f"torch ({kind})" for s in signature.outputs},
        }

    def predict(self, batch: Batch) -> Batch:
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(batch[name], dtype=dtype)) for name, dtype in self._inputs]
        with torch.inference_mode():
            result = self.module(*args)
        if isinstance(result, dict):
            missing = [n for n, _ in self._outputs if n not in result]
            if missing:
                raise ModelFailed(f"{self.source}: the program returned {', '.join(map(str, result))}; no {missing}")
            values = [result[n] for n, _ in self._outputs]
        else:
            values = list(result) if isinstance(result, tuple | list) else [result]
            if len(values) != len(self._outputs):
                raise ModelFailed(
                    f"{self.source}: the program returned {len(values)} tensors; the signature declares "
                    f"{len(self._outputs)} ({', '.join(n for n, _ in self._outputs)})"
                )
        out: Batch = {}
        for (name, dtype), value in zip(self._outputs, values, strict=True):
            arr = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
            out[name] = np.ascontiguousarray(arr, dtype=dtype)
        return out
