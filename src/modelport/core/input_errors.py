"""Tell a model refusing the request's values apart from a model failing.

A request can pass the signature's checks (names, datatypes, shapes) and still hold values a
framework refuses: scikit-learn's ``Input X contains NaN`` or ``... infinity or a value too large
for dtype('float32')``, an unknown category for a OneHotEncoder, XGBoost's ``Input data contains
`inf```, onnxruntime's INVALID_ARGUMENT. Those are the client's to fix (a 400 quoting the
framework); anything else a model raises is the model's failure (a 500).

The decision looks at where the exception was raised, not at what any model's code could say:
scikit-learn raises its input checks from ``sklearn.utils.validation`` and its encoders, so a
``ValueError`` from a user's own estimator code stays a failure.
"""

from __future__ import annotations

import re
from types import TracebackType

__all__ = ["rejected_input"]

# Modules whose ValueError means "these values are not acceptable input" (scikit-learn).
_SKLEARN_INPUT_CHECKS = ("sklearn.utils.validation", "sklearn.utils._array_api", "sklearn.preprocessing._encoders")
# XGBoost's C++ checks on data, as its messages start ("Check failed: valid: Input data contains `inf` ...").
_XGBOOST_INPUT = ("Input data contains", "Feature shape mismatch", "feature_names mismatch")
_CPP_PREFIX = re.compile(r"^\[[0-9:]+\]\s+\S+:\d+:\s*(Check failed:\s*[^:]*:\s*)?")


def _raised_in(exc: BaseException) -> str:
    """The module name of the frame that raised ``exc``."""
    tb: TracebackType | None = exc.__traceback__
    name = ""
    while tb is not None:
        name = str(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return name


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0].strip()
    return _CPP_PREFIX.sub("", line).strip()


def rejected_input(exc: BaseException) -> str | None:
    """The framework's own words when ``exc`` is its refusal of the input values, else None."""
    kind = type(exc)
    module = kind.__module__ or ""
    if isinstance(exc, ValueError) and _raised_in(exc).startswith(_SKLEARN_INPUT_CHECKS):
        return _first_line(str(exc))
    if module.startswith("xgboost") and kind.__name__ == "XGBoostError":
        said = _first_line(str(exc))
        if said.startswith(_XGBOOST_INPUT):
            return said
        return None
    if module.startswith("onnxruntime") and kind.__name__ == "InvalidArgument":
        return _first_line(str(exc)).removeprefix("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : ")
    return None
