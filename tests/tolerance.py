"""The one way tests compare two computation paths (native vs compiled, row vs frame, REST vs gRPC).

Floats agree when ``|got - want| <= rtol * |want| + atol * max(1, max|want|)``: the product's
own contract (``modelport.runtimes.compile.check``), relative because rounding error is relative to the
terms of a sum, with an absolute floor scaled to the output's magnitude so a value near zero made
of large terms is not called a disagreement. float32 outputs get float32's precision, and so do
outputs widened to float64 from a float32 computation (ONNX, XGBoost): say ``single=True``. NaN
equals NaN in the same place. Integers, booleans and strings must be equal: use ``exact=True`` (or pass
non-float data) only where the arithmetic is identical by construction, and say why at the call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.runtimes.compile.check import ATOL, RTOL

__all__ = ["ATOL", "RTOL", "F32_RTOL", "assert_close", "close"]

F32_RTOL = 1e-5
"""float32 carries ~7 significant digits; two float32 paths summing in another order differ near 1e-6."""


def _tolerances(
    want: np.ndarray, got: np.ndarray, rtol: float | None, atol: float | None, single: bool = False
) -> tuple[float, float]:
    single = single or any(t in (want.dtype.type, got.dtype.type) for t in (np.float32, np.float16))
    default_rtol = F32_RTOL if single else RTOL
    # float32 arithmetic loses ~1e-7 of the largest term: the floor is float32's precision at the output's scale.
    default_atol = F32_RTOL if single else ATOL
    return (default_rtol if rtol is None else rtol, default_atol if atol is None else atol)


def close(
    got: Any,
    want: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    exact: bool = False,
    single: bool = False,
) -> str | None:
    """None when ``got`` agrees with ``want``, else a sentence saying where and by how much."""
    want_a, got_a = np.asarray(want), np.asarray(got)
    if want_a.dtype == object or got_a.dtype == object:
        # Ragged or mixed data (token lists, nested rows): compare element by element.
        if want_a.shape != got_a.shape:
            return f"shape {list(got_a.shape)} instead of {list(want_a.shape)}"
        for i, (g, w) in enumerate(zip(got_a.ravel().tolist(), want_a.ravel().tolist(), strict=True)):
            if isinstance(w, float | int) and not isinstance(w, bool) and isinstance(g, float | int):
                problem = close(g, w, rtol=rtol, atol=atol, exact=exact, single=single)
            elif isinstance(w, list | tuple | np.ndarray) and isinstance(g, list | tuple | np.ndarray):
                problem = close(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol, exact=exact, single=single)
            else:
                problem = None if g == w else f"{g!r} instead of {w!r}"
            if problem:
                return f"element {i}: {problem}"
        return None
    if want_a.shape != got_a.shape:
        return f"shape {list(got_a.shape)} instead of {list(want_a.shape)}"
    floats = want_a.dtype.kind in "fc" and got_a.dtype.kind in "fc"
    if exact or not floats:
        if want_a.dtype.kind in "fc" or got_a.dtype.kind in "fc":
            bad = ~((want_a == got_a) | (np.isnan(want_a.astype(float)) & np.isnan(got_a.astype(float))))
        else:
            bad = np.asarray(want_a != got_a)
        if np.any(bad):
            at = tuple(int(v) for v in np.argwhere(np.atleast_1d(bad))[0])
            g, w = (np.atleast_1d(got_a)[at], np.atleast_1d(want_a)[at])
            return f"{int(np.sum(bad))} of {bad.size} values differ (at {list(at)}: {g!r} instead of {w!r})"
        return None
    r, a = _tolerances(want_a, got_a, rtol, atol, single)
    w64, g64 = want_a.astype(np.complex128 if want_a.dtype.kind == "c" else np.float64), got_a.astype(np.float64)
    finite = np.isfinite(w64)
    scale = float(np.max(np.abs(w64[finite]))) if finite.any() else 1.0
    bound = r * np.abs(w64) + a * max(1.0, scale)
    with np.errstate(invalid="ignore"):
        same_special = (np.isnan(w64) & np.isnan(g64)) | (np.isinf(w64) & (w64 == g64))
        bad = ~((np.abs(g64 - w64) <= bound) | same_special)
    if np.any(bad):
        at = tuple(int(v) for v in np.argwhere(np.atleast_1d(bad))[0])
        g, w = np.atleast_1d(got_a)[at], np.atleast_1d(want_a)[at]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = np.abs(g64 - w64)[bad] / np.maximum(np.abs(w64[bad]), np.finfo(np.float64).tiny)
        finite_ratios = ratios[~np.isnan(ratios)]  # NaN against a number has no relative difference
        rel = float(finite_ratios.max()) if finite_ratios.size else float("nan")
        return (
            f"{int(np.sum(bad))} of {bad.size} values differ beyond rtol={r:g} "
            f"(at {list(at)}: {g!r} instead of {w!r}; worst relative difference {rel:.3g})"
        )
    return None


def assert_close(
    got: Any,
    want: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    exact: bool = False,
    single: bool = False,
    what: str = "",
) -> None:
    """Fail with where and how much two paths disagree; see the module docstring for the rule.

    ``single``: one path computed in float32 though both arrays are float64 (ONNX, XGBoost).
    """
    problem = close(got, want, rtol=rtol, atol=atol, exact=exact, single=single)
    if problem:
        raise AssertionError(f"{what + ': ' if what else ''}{problem}")
