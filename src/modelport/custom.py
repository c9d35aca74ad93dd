"""Your own Python around a model: subclass :class:`Model` in a file beside the artifact.

::

    # models/churn/1/model.py
    import joblib
    from modelport.custom import Model, TensorSpec
    from modelport.core.errors import InvalidInput

    class Churn(Model):
        inputs = [TensorSpec("tenure", "FP64"), TensorSpec("plan", "BYTES")]
        outputs = [TensorSpec("churn", "FP64")]

        def load(self) -> None:                 # once per process, before the first request
            self.estimator = joblib.load(self.path / "estimator.joblib")

        def preprocess(self, batch):            # optional
            if (batch["tenure"] < 0).any():
                raise InvalidInput("tenure must be >= 0")   # a 400 that names the problem
            return {"x": np.column_stack([batch["tenure"], batch["plan"] == "pro"])}

        def predict(self, batch):
            return {"churn": self.estimator.predict_proba(batch["x"])[:, 1]}

    # models/churn/1/modelport.toml
    flavor = "python"
    entrypoint = "model.py:Churn"
    [python]                                     # optional: handed to the model as self.settings
    threshold = 0.4

Batches are columnar: input name -> numpy array whose axis 0 is the row, already checked
against the declared ``inputs`` (names, datatypes, shapes), so the class validates only what
the signature cannot say. ``postprocess(predict(preprocess(batch)))`` must return every
declared output with one row per input row. It is served like every flavor: V1, V2 (JSON and
binary), gRPC, batching, versions, traffic, metrics, the payload log, the web page and
``modelport score``.

An exception the class raises is a 500 that names it; raise :class:`~modelport.core.errors.InvalidInput`
(or another :class:`~modelport.core.errors.ClientError`) for bad client data to answer 4xx instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from modelport.core.signature import Batch, Signature, TensorSpec

__all__ = ["Batch", "Model", "Signature", "TensorSpec"]


class Model:
    """Base class of a custom model; modelport creates it with no arguments, then calls :meth:`load`.

    Before :meth:`load` runs, ``self.path`` is the directory the model was loaded from and
    ``self.settings`` the ``[python]`` table of modelport.toml (empty when there is none).
    """

    inputs: ClassVar[Sequence[TensorSpec | Mapping[str, Any]]] = ()
    """The inputs the model takes (or give them under ``[signature]`` in modelport.toml)."""

    outputs: ClassVar[Sequence[TensorSpec | Mapping[str, Any]]] = ()
    """The outputs it returns, in order."""

    fork_safe: ClassVar[bool] = True
    """False when :meth:`load` starts threads or a runtime that a forked worker cannot inherit."""

    path: Path
    settings: dict[str, Any]

    def load(self) -> None:
        """Read weights and build what :meth:`predict` needs (runs once, at load time)."""

    def preprocess(self, batch: Batch) -> Batch:
        """Turn the request's columns into what :meth:`predict` takes (default: unchanged)."""
        return batch

    def predict(self, batch: Batch) -> Batch:
        """Columns in, columns out."""
        raise NotImplementedError(f"{type(self).__name__} must define predict(batch) -> batch")

    def postprocess(self, batch: Batch) -> Batch:
        """Turn :meth:`predict`'s columns into the declared outputs (default: unchanged)."""
        return batch
