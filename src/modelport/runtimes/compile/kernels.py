"""The pieces compiled prediction is made of: refusal signals and the kernel registry.

A *step* turns the rows it is given into a float64 matrix (a scaler, an encoder, a
ColumnTransformer); a *head* turns that matrix into the estimator's outputs
(``predict``, ``predict_proba``, ...). Builders read a fitted estimator once, at load
time, and return plain numpy closures; they raise :class:`NotCompilable` with a reason
when the estimator has a setting they do not reproduce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "HEADS",
    "STEPS",
    "Fallback",
    "Head",
    "NotCompilable",
    "Step",
    "finite_or_fallback",
    "register_head",
    "type_name",
]

Table = Any
"""What a step receives: a 2-D array, or a dict of 1-D column arrays for DataFrame models."""

Step = Callable[[Table], np.ndarray]
Head = Callable[[np.ndarray], dict[str, np.ndarray]]


class NotCompilable(Exception):
    """Load time: this estimator (or one of its settings) has no kernel; the message says why."""


class Fallback(Exception):
    """Run time: this batch holds something only the native model handles as it should.

    Non-finite numbers where scikit-learn raises, categories the encoder has not seen
    when it is set to raise or warn: rather than copying each error message, the batch
    goes to the native model, which answers (or fails) exactly as it always would.
    """


def type_name(est: Any) -> str:
    return type(est).__name__


# Keyed by the exact class: a subclass may change what predict means, so it gets no kernel
# unless one is registered for it.
STEPS: dict[type, Callable[..., Step]] = {}
HEADS: dict[type, Callable[[Any], Head]] = {}


def register_head(cls: type, builder: Callable[[Any], Head]) -> None:
    """Add (or replace) the head kernel for an estimator class.

    The agreement check still decides whether it serves: a kernel that disagrees with
    the estimator on the validation sample is refused and logged.
    """
    HEADS[cls] = builder


def finite_or_fallback(x: np.ndarray) -> np.ndarray:
    """scikit-learn rejects NaN and infinity in these estimators: let it say so itself."""
    if not np.isfinite(x).all():
        raise Fallback
    return x
