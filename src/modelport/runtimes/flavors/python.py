"""Custom Python models: a :class:`modelport.custom.Model` subclass named by ``entrypoint``.

``entrypoint = "model.py:Churn"`` in modelport.toml names a file in the model's directory
and a class in it. The file is imported under a module name made from its absolute path and
content, so two versions that each hold a ``model.py`` do not share one module, and a changed
file is imported anew on reload; while it is imported and
while ``load()`` runs, its directory is first on ``sys.path`` so helper modules beside it import.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from modelport.core.config import CONFIG_FILE, ModelConfig
from modelport.core.errors import ModelFailed, ModelLoadError
from modelport.core.signature import Batch, Signature, TensorSpec, batch_rows
from modelport.custom import Model as CustomModel

__all__ = ["PythonPredictor", "load"]


def _entrypoint(path: Path, config: ModelConfig) -> tuple[Path, str]:
    raw = config.extra.get("entrypoint")
    where = config.path or str(path / CONFIG_FILE)
    if not isinstance(raw, str) or raw.count(":") != 1 or not all(raw.split(":")):
        raise ModelLoadError(
            f'{where}: the python flavor needs entrypoint = "FILE.py:Class" (for example "model.py:Churn"), got {raw!r}'
        )
    file_name, class_name = raw.split(":")
    directory = path if path.is_dir() else path.parent
    target = (directory / file_name).resolve()
    if not target.is_file():
        found = ", ".join(sorted(p.name for p in directory.glob("*.py"))) or "none"
        raise ModelLoadError(f"{where}: entrypoint file {file_name} not found in {directory} (Python files: {found})")
    return target, class_name


@contextmanager
def _on_path(directory: Path) -> Iterator[None]:
    entry = str(directory)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        try:
            sys.path.remove(entry)
        except ValueError:
            pass


def _brief_traceback(exc: BaseException, file: Path) -> str:
    """The user's own frames only: where in their file it failed."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).parent == file.parent]
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _import(file: Path) -> ModuleType:
    # Path and content: a reload after the file changed imports the new code.
    digest = hashlib.sha256(str(file).encode() + b"\0" + file.read_bytes()).hexdigest()[:12]
    module_name = f"modelport_user_{digest}_{file.stem}"
    existing = sys.modules.get(module_name)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{file}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickle look classes up here
    try:
        with _on_path(file.parent):
            spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[module_name]
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise ModelLoadError(f"{file}: importing it failed: {_brief_traceback(exc, file)}") from exc
    return module


def _specs(where: str, kind: str, declared: Sequence[Any]) -> tuple[TensorSpec, ...]:
    out = []
    for item in declared:
        if isinstance(item, TensorSpec):
            out.append(item)
        elif isinstance(item, Mapping):
            try:
                out.append(TensorSpec.from_dict(item))
            except (ValueError, TypeError) as exc:
                raise ModelLoadError(f"{where}: {kind}: {exc}") from None
        else:
            raise ModelLoadError(
                f"{where}: {kind} must list TensorSpec objects or {{name, datatype, shape}} mappings, got {item!r}"
            )
    return tuple(out)


def load(path: Path, config: ModelConfig) -> PythonPredictor:
    file, class_name = _entrypoint(path, config)
    module = _import(file)
    cls = getattr(module, class_name, None)
    where = f"{file.name}:{class_name}"
    if not (isinstance(cls, type) and issubclass(cls, CustomModel)):
        found = sorted(
            n
            for n, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, CustomModel) and v is not CustomModel
        )
        what = "not found" if cls is None else f"is a {type(cls).__name__}, not a modelport.custom.Model subclass"
        listed = ", ".join(found) or "none"
        raise ModelLoadError(
            f"{file}: class {class_name} {what}; modelport.custom.Model subclasses in the file: {listed}"
        )
    inputs = _specs(where, "inputs", cls.inputs) or config.inputs_override
    outputs = _specs(where, "outputs", cls.outputs) or config.outputs_override
    if not inputs or not outputs:
        missing = " and ".join(k for k, v in (("inputs", inputs), ("outputs", outputs)) if not v)
        raise ModelLoadError(
            f"{where}: declares no {missing}; set them on the class (inputs = [TensorSpec(...)]) "
            f"or under [signature] in {CONFIG_FILE}"
        )
    try:
        signature = Signature(inputs, outputs)
    except ValueError as exc:
        raise ModelLoadError(f"{where}: {exc}") from None
    settings = config.extra.get("python") or {}
    if not isinstance(settings, dict):
        raise ModelLoadError(f"{config.path}: [python] must be a table of settings for the model")
    try:
        instance = cls()
        instance.path = file.parent
        instance.settings = dict(settings)
        with _on_path(file.parent):
            instance.load()
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{where}: load() failed: {_brief_traceback(exc, file)}") from exc
    return PythonPredictor(instance, signature, where, str(file))


class PythonPredictor:
    """Runs ``postprocess(predict(preprocess(batch)))`` and holds the answer to the declared outputs."""

    user_code = True  # client errors are the InvalidInput the class raises (flavors.runs_user_code)

    def __init__(self, model: CustomModel, signature: Signature, entrypoint: str, source: str) -> None:
        self.model = model
        self.signature = signature
        self.source = source
        self.entrypoint = entrypoint
        self.fork_safe = bool(getattr(model, "fork_safe", True))
        self._outputs = [(s.name, s.dtype, s.shape) for s in signature.outputs]
        self.info: dict[str, Any] = {
            "entrypoint": entrypoint,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "runtime": {s.name: "python" for s in signature.outputs},
        }

    def predict(self, batch: Batch) -> Batch:
        model = self.model
        result = model.postprocess(model.predict(model.preprocess(batch)))
        if not isinstance(result, Mapping):
            raise ModelFailed(
                f"{self.entrypoint}: predict/postprocess returned a {type(result).__name__}; "
                "expected a mapping of output name -> array"
            )
        missing = [name for name, _, _ in self._outputs if name not in result]
        if missing:
            raise ModelFailed(
                f"{self.entrypoint}: returned no {', '.join(repr(m) for m in missing)}; "
                f"it returned: {', '.join(map(str, result)) or 'nothing'}"
            )
        rows = batch_rows(batch)
        out: Batch = {}
        for name, dtype, shape in self._outputs:
            out[name] = self._fit(name, result[name], dtype, shape, rows)
        return out

    def _fit(self, name: str, value: Any, dtype: np.dtype[Any], shape: tuple[int, ...], rows: int) -> np.ndarray:
        """The declared dtype and shape, or a 500 naming the output (the model broke its own contract)."""
        arr = np.asarray(value)
        if dtype.kind == "O":
            if arr.dtype.kind not in "OUS":
                raise ModelFailed(f"{self.entrypoint}: output '{name}' is declared BYTES but holds {arr.dtype} values")
            arr = arr.astype(object, copy=False)
        elif arr.dtype != dtype:
            if not np.can_cast(arr.dtype, dtype, casting="same_kind"):
                raise ModelFailed(
                    f"{self.entrypoint}: output '{name}' holds {arr.dtype} values, which do not convert to its "
                    f"declared {dtype} without loss"
                )
            arr = arr.astype(dtype)
        fixed = len(shape) == arr.ndim and all(w in (-1, g) for w, g in zip(shape, arr.shape, strict=True))
        if not fixed or arr.shape[0] != rows:
            raise ModelFailed(
                f"{self.entrypoint}: output '{name}' has shape {list(arr.shape)}; declared {list(shape)} "
                f"with one row per input row ({rows})"
            )
        # Contiguous: a strided view (proba[:, 0]) would fail orjson on the V1 columnar path.
        return np.ascontiguousarray(arr) if arr.dtype.kind != "O" else arr
