"""The loaded-model object every surface talks to."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from modelport.core.config import BatchingConfig
from modelport.core.errors import InvalidInput, ModelFailed, ModelportError, ModelRejectedInput
from modelport.core.input_errors import rejected_input
from modelport.core.signature import Batch, InputPlan, Signature

__all__ = ["Model", "Predictor", "predict_outputs"]


class Predictor(Protocol):
    """What a flavor hands back: a signature and a function from Batch to Batch.

    ``predict`` receives a Batch already checked against ``signature`` (names,
    dtypes, shapes), so it does no validation of its own, and it must return every
    output of ``signature``. ``info`` is free-form detail for ``modelport inspect``.

    A predictor whose ``selects_outputs`` is true is called as ``predict(batch, outputs)``
    and may return only those outputs: a scikit-learn model asked for ``predict_proba``
    alone then skips its separate ``predict`` call.

    A predictor whose ``compute_datatype`` is ``"FP32"`` computes its numeric inputs in float32
    (trees in scikit-learn and XGBoost): finite values beyond float32's range are refused before
    the model is called, naming the input, instead of turning into infinities inside it.
    """

    signature: Signature
    info: dict[str, Any]

    def predict(self, batch: Batch) -> Batch: ...


# Where wrappers (signature overrides, compiled kernels, MLflow's view) keep what they wrap.
_WRAPPED = ("inner", "native", "_native", "predictor")


def _layers(predictor: object) -> Iterator[tuple[object, dict[str, Any]]]:
    """``predictor`` and every predictor it wraps, each with its instance attributes, outermost first.

    Wrapped predictors are found through instance attributes only, so a lazily loaded native
    model (the compile cache's) is not loaded by asking.
    """
    stack, seen = [predictor], set()
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        own: dict[str, Any] = getattr(current, "__dict__", {})
        yield current, own
        stack.extend(own.get(wrapped) for wrapped in reversed(_WRAPPED))


def declares(predictor: object, name: str, value: object) -> bool:
    """True when ``predictor``, or a predictor it wraps, sets attribute ``name`` to ``value``."""
    return any(own.get(name, getattr(type(layer), name, None)) == value for layer, own in _layers(predictor))


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


def predict_outputs(predictor: Any, batch: Batch, outputs: Sequence[str] | None) -> Batch:
    """``predictor.predict``, asking for ``outputs`` only when the predictor can select them.

    Wrappers (compiled, renamed, cached) call this on what they wrap, so the choice is made
    in one place.
    """
    if outputs is not None and getattr(predictor, "selects_outputs", False):
        result: Batch = predictor.predict(batch, outputs)
        return result
    result = predictor.predict(batch)
    return result


class Model:
    """A loaded, immutable, thread-safe model: ``signature`` plus ``predict(Batch) -> Batch``.

    ::

        model = modelport.load_model("examples/models/wine")
        out = model.predict({"input": X})          # {"predict": ..., "predict_proba": ...}
    """

    def __init__(
        self,
        name: str,
        version: int,
        predictor: Predictor,
        *,
        flavor: str,
        source: str,
        outputs: Sequence[str] | None = None,
        close: Callable[[], None] | None = None,
        batching: BatchingConfig | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.flavor = flavor
        self.source = source
        self.predictor = predictor
        full = predictor.signature
        if outputs:
            unknown = [o for o in outputs if o not in full.output_names]
            if unknown:
                raise ModelportError(
                    f"model '{name}': outputs {unknown} are not produced; it has: {', '.join(full.output_names)}"
                )
            self.signature = full.select_outputs(outputs)
        else:
            self.signature = full
        self.plan = InputPlan(name, self.signature, compute_datatype=compute_datatype_of(predictor))
        self._output_names = tuple(self.signature.output_names)
        # Looked up for every response the codecs encode; built once here.
        self.output_datatypes = {s.name: s.datatype for s in self.signature.outputs}
        self._close = close
        self.batching = batching
        # Per-response strings, made once.
        self.version_text = str(version)
        self.version_header = (b"x-model-version", self.version_text.encode())
        self._user_code = runs_user_code(predictor)
        self._variants: dict[str, Model] = {}

    def for_signature(self, signature_name: object) -> Model:
        """This model answering through another of its named signatures (TF Serving's ``signature_name``).

        ``None``, ``""`` and the signature the model serves by default give the model itself; every model
        answers to ``serving_default``, so requests written for TF Serving work against any flavor.
        """
        signatures = getattr(self.predictor, "signatures", None) or {}
        default = getattr(self.predictor, "signature_name", "serving_default")
        if signature_name in (None, "", default) or (not signatures and signature_name == "serving_default"):
            return self
        if not isinstance(signature_name, str):
            raise InvalidInput(f"model '{self.name}': signature_name must be a string, got {signature_name!r}")
        variant = self._variants.get(signature_name)
        if variant is not None:
            return variant
        if signature_name not in signatures:
            listed = ", ".join(sorted(signatures)) or default
            raise InvalidInput(f"model '{self.name}' has no signature '{signature_name}'; its signatures are: {listed}")
        variant = Model(
            self.name,
            self.version,
            signatures[signature_name],
            flavor=self.flavor,
            source=self.source,
            batching=self.batching,
        )
        self._variants[signature_name] = variant
        return variant

    @property
    def info(self) -> dict[str, Any]:
        return dict(getattr(self.predictor, "info", {}) or {})

    def __repr__(self) -> str:
        return f"<Model {self.name!r} v{self.version} flavor={self.flavor}>"

    def predict(self, batch: Mapping[str, Any], outputs: Sequence[str] | None = None) -> Batch:
        """Validate ``batch`` against the signature, then predict.

        Accepts arrays or nested lists per input; raises :class:`InvalidInput` with a
        message naming the input when something does not fit.
        """
        return self.run(self.plan.coerce_batch(batch), outputs)

    def run(self, batch: Batch, outputs: Sequence[str] | None = None) -> Batch:
        """Predict on a Batch that the input plan already checked (the server's path)."""
        wanted = self._output_names if outputs is None else self.check_outputs(outputs)
        try:
            result = predict_outputs(self.predictor, batch, wanted)
        except ModelportError:
            raise
        except Exception as exc:
            said = None if self._user_code else rejected_input(exc)
            if said is not None:  # the framework refused the client's values: the client's to fix
                raise ModelRejectedInput(
                    f"model '{self.name}' version {self.version} rejected the input: {self.flavor} says: {said}"
                ) from exc
            # The model's own failure: an HTTP client learns which model; the log gets the exception.
            raise ModelFailed(
                f"model '{self.name}' version {self.version} failed: {type(exc).__name__}: {exc}",
                public=f"model '{self.name}' version {self.version} failed while predicting",
            ) from exc
        # C order: the JSON encoder writes arrays directly and only in C order (a kernel may hand back a
        # transposed or strided view); a no-op for the usual contiguous output.
        return {name: np.ascontiguousarray(result[name]) for name in wanted}

    def check_outputs(self, outputs: Sequence[str]) -> tuple[str, ...]:
        """The requested output names; InvalidInput for any the model does not produce."""
        unknown = [o for o in outputs if o not in self._output_names]
        if unknown:
            raise InvalidInput(
                f"model '{self.name}': unknown output{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(u) for u in unknown)}; the model's outputs are: {', '.join(self._output_names)}"
            )
        return tuple(outputs)

    def close(self) -> None:
        if self._close is not None:
            self._close()


def compute_datatype_of(predictor: Any) -> str | None:
    """The datatype the predictor (or one it wraps) computes its inputs in, when it says."""
    for _, own in _layers(predictor):
        found = own.get("compute_datatype")
        if isinstance(found, str):
            return found
    return None
