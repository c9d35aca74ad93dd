"""Compiled prediction: serve a model's outputs from numpy kernels that agree with it.

At load time :func:`compile_predictor` reads a fitted scikit-learn estimator or Pipeline
(linear models, scalers, imputers, one-hot encoders, ColumnTransformers, trees and tree
ensembles) into numpy closures. A kernel serves an output only after the agreement
check (:mod:`modelport.compile.check`) found it equal to the native model on a
validation sample: labels exactly, values to 1e-9 relative. Everything else stays on
the native model, and the log says why. On one row this turns ~340 µs of
scikit-learn overhead into a few µs (see docs/bench/compile.md).

Turn it off with ``compile = false`` in modelport.toml, ``load_model(..., compile=False)``
or ``--no-compile``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from modelport.compile.check import validation_sample, verify
from modelport.compile.kernels import HEADS, STEPS, Fallback, NotCompilable, register_head, type_name
from modelport.model import Predictor
from modelport.signature import Batch, batch_rows

__all__ = ["COMPILED", "CompiledPredictor", "compile_predictor", "register_head"]

log = logging.getLogger("modelport.compile")

COMPILED = "numpy (compiled)"
_loaded = False


def _builtins() -> None:
    global _loaded
    if _loaded:
        return
    from modelport.compile import linear, pipeline, trees

    for table, found in (
        (HEADS, linear.builtin_heads()),
        (HEADS, trees.builtin_heads()),
        (STEPS, pipeline.builtin_steps()),
    ):
        for cls, builder in found.items():
            table.setdefault(cls, builder)
    _loaded = True


class CompiledPredictor:
    """The same signature as ``inner``; some outputs come from a compiled kernel.

    A batch the kernel hands back (:class:`~modelport.compile.kernels.Fallback`) goes to
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

    def __getattr__(self, name: str) -> Any:
        # estimator, columns, frame, source, close: whatever the flavor's predictor offers.
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def predict(self, batch: Batch) -> Batch:
        if self._native_above is not None and batch_rows(batch) > self._native_above:
            return self.inner.predict(batch)
        try:
            got = self._kernel(batch)
        except Fallback:
            return self.inner.predict(batch)
        out: Batch = {}
        for name in self._compiled:
            value = got[name]
            if name in self._objects and value.dtype != object:
                value = value.astype(object)
            out[name] = value
        if self._native:
            native = self.inner.predict(batch)
            for name in self._native:
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
    from modelport.flavors.sklearn import SklearnPredictor

    if not isinstance(predictor, SklearnPredictor):
        log.debug("%s: no compiled runtime for %s predictors", getattr(predictor, "source", ""), type_name(predictor))
        return predictor
    est = predictor.estimator
    where = predictor.source or type_name(est)
    _builtins()
    try:
        return _compile(predictor, est, where, sample)
    except NotCompilable as exc:
        return _keep(predictor, where, f"not compiled: {exc}")
    except Exception as exc:  # a kernel builder tripped on an estimator it misread: never fail the load
        log.warning("%s: compiling failed, scikit-learn serves every output", where, exc_info=True)
        return _keep(predictor, where, f"compiling failed: {type(exc).__name__}: {exc}", log_it=False)


def _compile(predictor: Any, est: Any, where: str, sample: Batch | None) -> Any:
    from modelport.compile.pipeline import compile_estimator

    native_runtime = dict(predictor.info.get("runtime", {}))
    outputs = predictor.signature.output_names
    types = {s.name: s.datatype for s in predictor.signature.inputs}
    head = compile_estimator(est, predictor.columns, types)
    source = _source(predictor)

    def kernel(batch: Batch) -> dict[str, np.ndarray]:
        return head(source(batch))

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
        f"numpy kernel for {_describe(est)}; agreed with the native model on {verdict.rows} validation rows "
        f"(largest relative difference {verdict.worst:.1e})"
    )
    log.info("%s: %s serves %s: %s", where, COMPILED, ", ".join(compiled), summary)
    native_above = getattr(head, "native_above", None)
    if native_above is not None:
        summary += f"; batches over {native_above} rows go to the native model, which is faster there"
    info = {**predictor.info, "runtime": runtime, "compiled": summary}
    return CompiledPredictor(predictor, kernel, compiled, info, native_above)


def _keep(predictor: Any, where: str, reason: str, *, log_it: bool = True) -> Any:
    if log_it:
        log.info("%s: scikit-learn serves every output (%s)", where, reason)
    predictor.info["compiled"] = reason
    return predictor


def _describe(est: Any) -> str:
    steps = getattr(est, "steps", None)
    if steps is None:
        return type_name(est)
    return "Pipeline(" + ", ".join(type_name(s) for _, s in steps) + ")"
