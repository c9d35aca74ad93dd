"""Compiled prediction: serve a model's outputs from numpy kernels that agree with it.

At load time :func:`compile_predictor` reads a fitted scikit-learn estimator or Pipeline
(linear models, scalers, imputers, one-hot encoders, ColumnTransformers, trees and tree
ensembles, LightGBM's scikit-learn wrappers) or a native LightGBM Booster into numpy
closures. A kernel serves an output only after the agreement check
(:mod:`modelport.runtimes.compile.check`) found it equal to the native model on a validation
sample: labels exactly, values to 1e-9 relative. Everything else stays on the native
model, and the log says why. On one row this turns ~340 µs of scikit-learn overhead into
~15 µs for a scaled logistic regression (see docs/bench/compile.md).

Supported (exact classes; a subclass needs :func:`register_head`): see
``linear.builtin_heads``, ``trees.builtin_heads``, ``boosters.builtin_heads`` and
``pipeline.builtin_steps``; the log names them when a model has something else.

Turn it off with ``compile = false`` in modelport.toml, ``load_model(..., compile=False)``
or ``--no-compile``.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.config import ModelConfig
from modelport.core.model import Predictor, predict_outputs
from modelport.core.signature import Batch, batch_rows
from modelport.runtimes.compile.check import validation_sample, verify
from modelport.runtimes.compile.kernels import HEADS, STEPS, Fallback, NotCompilable, register_head, type_name

__all__ = ["COMPILED", "CompiledPredictor", "compile_predictor", "load_compiled", "register_head"]

log = logging.getLogger("modelport.compile")

COMPILED = "numpy (compiled)"
_loaded: set[str] = set()
# A kernel table is registered once the module its estimators come from is imported: an
# unpickled model has imported the modules of its classes, so a logistic-regression pipeline
# never pays for importing sklearn.ensemble or LightGBM (~0.1 s and ~15 MB) just to fill a table.
_NEEDS = {
    "linear": ("sklearn.linear_model", "sklearn.svm"),
    "pipeline": ("sklearn",),
    "trees": ("sklearn.tree", "sklearn.ensemble"),
    "boosters": ("lightgbm",),
}


def _builtins() -> None:
    for group, needed in _NEEDS.items():
        if group in _loaded or not any(m in sys.modules for m in needed):
            continue
        module = importlib.import_module(f"modelport.runtimes.compile.{group}")
        table = STEPS if group == "pipeline" else HEADS
        found = module.builtin_steps() if group == "pipeline" else module.builtin_heads()
        for cls, builder in found.items():
            table.setdefault(cls, builder)
        _loaded.add(group)


class CompiledPredictor:
    """The same signature as ``inner``; some outputs come from a compiled kernel.

    A batch the kernel hands back (:class:`~modelport.runtimes.compile.kernels.Fallback`) goes to
    ``inner`` whole, so answers and error messages for odd inputs are the native model's.
    """

    def __init__(
        self, inner: Any, kernel: Any, compiled: list[str], info: dict[str, Any], native_above: int | None = None
    ) -> None:
        self.inner = inner
        self._native_above = native_above
        self.signature = inner.signature
        self.info = info
        self._kernel = kernel
        self._compiled = tuple(compiled)
        self._native = tuple(n for n in inner.signature.output_names if n not in compiled)
        self._objects = {s.name for s in inner.signature.outputs if s.datatype == "BYTES"}
        self.refused: dict[str, str] = {}  # output -> why the agreement check kept it native

    selects_outputs = True

    def __getattr__(self, name: str) -> Any:
        # estimator, columns, frame, source, close: whatever the flavor's predictor offers.
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def predict(self, batch: Batch, outputs: Sequence[str] | None = None) -> Batch:
        if self._native_above is not None and batch_rows(batch) > self._native_above:
            return predict_outputs(self.inner, batch, outputs)
        try:
            got = self._kernel(batch)
        except Fallback:
            return predict_outputs(self.inner, batch, outputs)
        out: Batch = {}
        for name in self._compiled:
            value = got[name]
            if name in self._objects and value.dtype != object:
                value = value.astype(object)
            out[name] = value
        native_wanted = [n for n in self._native if outputs is None or n in outputs]
        if native_wanted:
            native = predict_outputs(self.inner, batch, native_wanted)
            for name in native_wanted:
                out[name] = native[name]
        return out


def _source(predictor: Any) -> Any:
    """From the Batch to what the first step reads, refusing infinity as scikit-learn does."""
    columns = predictor.columns
    if columns is None:
        name = predictor.signature.inputs[0].name

        def array(batch: Batch) -> np.ndarray:
            x = batch[name]
            if x.dtype != np.float64:
                x = x.astype(np.float64)
            if np.isinf(x).any():
                raise Fallback
            return x

        return array
    numeric = [s.name for s in predictor.signature.inputs if s.datatype != "BYTES"]

    def frame(batch: Batch) -> Batch:
        for c in numeric:
            if np.isinf(batch[c]).any():
                raise Fallback
        return batch

    return frame


def compile_predictor(predictor: Predictor, *, sample: Batch | None = None) -> Predictor:
    """``predictor`` with compiled outputs where a kernel exists and agrees; else ``predictor``.

    ::

        fast = compile_predictor(load_predictor("sklearn", path, config))
        fast.info["runtime"]        # {"predict": "numpy (compiled)", "predict_proba": "numpy (compiled)"}
    """
    from modelport.runtimes.flavors.sklearn import SklearnPredictor

    booster = getattr(predictor, "booster", None)
    if type(booster).__module__.startswith("lightgbm"):
        where, native = getattr(predictor, "source", "") or "LightGBM booster", "lightgbm"
        build: Any = _lightgbm
    elif isinstance(predictor, SklearnPredictor):
        where, native = predictor.source or type_name(predictor.estimator), "scikit-learn"
        build = _compile
    else:
        log.debug("%s: no compiled runtime for %s predictors", getattr(predictor, "source", ""), type_name(predictor))
        return predictor
    _builtins()
    try:
        return build(predictor, where, sample)
    except NotCompilable as exc:
        return _keep(predictor, where, f"not compiled: {exc}", native=native)
    except Exception as exc:  # a kernel builder tripped on a model it misread: never fail the load
        log.warning("%s: compiling failed, %s serves every output", where, native, exc_info=True)
        return _keep(predictor, where, f"compiling failed: {type(exc).__name__}: {exc}", log_it=False)


def _lightgbm(predictor: Any, where: str, sample: Batch | None) -> Any:
    from modelport.runtimes.compile.boosters import native_lightgbm

    kernel = native_lightgbm(predictor)
    return _checked(predictor, predictor.booster, kernel, where, sample, "LightGBM Booster")


def _compile(predictor: Any, where: str, sample: Batch | None) -> Any:
    from modelport.runtimes.compile.pipeline import compile_estimator

    est = predictor.estimator
    types = {s.name: s.datatype for s in predictor.signature.inputs}
    head = compile_estimator(est, predictor.columns, types)
    source = _source(predictor)

    def kernel(batch: Batch) -> dict[str, np.ndarray]:
        return head(source(batch))

    kernel.native_above = getattr(head, "native_above", None)  # type: ignore[attr-defined]
    return _checked(predictor, est, kernel, where, sample, _describe(est))


def _checked(predictor: Any, est: Any, kernel: Any, where: str, sample: Batch | None, what: str) -> Any:
    """Run the agreement check and wrap the outputs that pass."""
    native_runtime = dict(predictor.info.get("runtime", {}))
    outputs = predictor.signature.output_names
    clean, hostile = validation_sample(predictor.signature, est, predictor.columns)
    batches = [clean] if sample is None else [sample, clean]
    classifier = getattr(est, "classes_", None) is not None
    exact = {o.name for o in predictor.signature.outputs if o.datatype not in {"FP16", "FP32", "FP64"}}
    if classifier and "predict" in outputs:
        exact.add("predict")
    verdict = verify(predictor.predict, kernel, outputs, exact, batches, hostile)
    compiled = [o for o in outputs if o not in verdict.refused]
    for name, reason in verdict.refused.items():
        log.info(
            "%s: output '%s' stays on %s: the compiled kernel was refused: %s",
            where,
            name,
            native_runtime.get(name, "the native model"),
            reason,
        )
    if not compiled:
        return _keep(predictor, where, "compiled kernel refused by the agreement check", log_it=False)
    runtime = {o: COMPILED if o in compiled else native_runtime.get(o, "native") for o in outputs}
    summary = (
        f"numpy kernel for {what}; agreed with the native model on {verdict.rows} validation rows "
        f"(largest relative difference {verdict.worst:.1e})"
    )
    log.info("%s: %s serves %s: %s", where, COMPILED, ", ".join(compiled), summary)
    native_above = getattr(kernel, "native_above", None)
    if native_above is not None:
        summary += f"; batches over {native_above} rows go to the native model, which is faster there"
    info = {**predictor.info, "runtime": runtime, "compiled": summary}
    out = CompiledPredictor(predictor, kernel, compiled, info, native_above)
    out.refused = dict(verdict.refused)
    return out


def _keep(predictor: Any, where: str, reason: str, *, log_it: bool = True, native: str = "scikit-learn") -> Any:
    if log_it:
        log.info("%s: %s serves every output (%s)", where, native, reason)
    predictor.info["compiled"] = reason
    return predictor


def _describe(est: Any) -> str:
    steps = getattr(est, "steps", None)
    if steps is None:
        return type_name(est)
    return "Pipeline(" + ", ".join(type_name(s) for _, s in steps) + ")"


def load_compiled(flavor: str, artifact: Path, config: ModelConfig, load_native: Callable[[], Predictor]) -> Predictor:
    """``compile_predictor(load_native())``, through the compile cache (:mod:`modelport.runtimes.compile.cache`).

    On a hit the kernel serves at once and ``load_native`` runs only when the native model is
    first needed; on a miss the model loads, is compiled and checked, and a kernel that serves
    is stored for the next start.
    """
    from modelport.runtimes.compile import cache

    key = cache.entry_key(flavor, artifact, config) if cache.cache_dir() is not None else None
    entry = cache.read_entry(key) if key is not None else None
    if entry is not None:
        where = str(artifact)
        lazy = cache.LazyNative(load_native, entry["signature"], entry["native_info"], frozenset(entry["names"]), where)
        lazy.compute_datatype = entry.get("compute_datatype")
        runtime = entry["info"].get("runtime", {})
        for name, reason in entry["refused"].items():
            log.info(
                "%s: output '%s' stays on %s: the compiled kernel was refused: %s",
                where,
                name,
                runtime.get(name, "the native model"),
                reason,
            )
        compiled = entry["compiled"]
        log.info(
            "%s: %s serves %s: %s (agreement check of %s, from the compile cache %s)",
            where,
            COMPILED,
            ", ".join(compiled),
            entry["info"].get("compiled", ""),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["created"])),
            entry["path"],
        )
        out = CompiledPredictor(lazy, entry["kernel"], compiled, dict(entry["info"]), entry["native_above"])
        out.refused = dict(entry["refused"])
        return out
    native = load_native()
    predictor = compile_predictor(native)
    if key is not None and isinstance(predictor, CompiledPredictor):
        cache.write_entry(key, predictor, native, str(artifact))
    return predictor
