"""The agreement check: a compiled kernel serves an output only if it gives the model's answers.

The validation sample is a saved sample when one is given, plus rows generated from the
signature and from what the fitted model knows: scaler means and scales, imputer
statistics, encoder categories and tree thresholds (hit exactly and one float32 step to
either side, where a comparison flips). Rows the native model refuses (NaN or infinity
it does not accept, unseen categories it raises on) are run one at a time, and the
compiled path must refuse them too.

Tolerance: labels (``predict`` of a classifier and every non-float output) must be equal;
floats must satisfy ``|compiled - native| <= 1e-9 * |native| + 1e-12 * max(1, max|native|)``.
The absolute floor scales with the output's magnitude because rounding error in a sum is
relative to its terms, not its result: a regression value near 0 made of terms near 100
carries ~1e-14 of noise that a purely relative test would call a disagreement.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.core.signature import Batch, Signature
from modelport.runtimes.input_hints import Hint as _Hint
from modelport.runtimes.input_hints import estimator_hints as _hints

__all__ = ["ATOL", "RTOL", "Verdict", "compare", "validation_sample", "verify"]

RTOL = 1e-9
ATOL = 1e-12
UNSEEN = "\x00modelport-unseen-category"

Kernel = Callable[[Batch], dict[str, np.ndarray]]


def validation_sample(
    signature: Signature, estimator: Any, columns: list[str] | None, *, rows: int = 256, seed: int = 0
) -> tuple[Batch, list[Batch]]:
    """Generated rows the model should accept, and single-row batches it may refuse."""
    rng = np.random.default_rng(seed)
    keys: list[Any]
    if columns is None:
        spec = signature.inputs[0]
        n_features = spec.shape[1] if len(spec.shape) == 2 and spec.shape[1] > 0 else 1
        keys = list(range(n_features))
    else:
        keys = list(columns)
    hints: dict[Any, _Hint] = {}
    _hints(estimator, keys, hints)
    text = {s.name for s in signature.inputs if s.datatype == "BYTES"}
    values: dict[Any, np.ndarray] = {}
    for k in keys:
        h = hints.get(k, _Hint())
        if k in text:
            cats = h.categories or ["a", "b", "c"]
            values[k] = np.array([cats[i] for i in rng.integers(0, len(cats), rows)], dtype=object)
            continue
        z = rng.standard_normal(rows) * rng.choice([0.3, 1.0, 3.0], rows)
        col = h.center + h.scale * z
        col[0], col[1] = h.center, 0.0
        if h.nan_ok:
            col[rng.random(rows) < 0.1] = np.nan
        values[k] = col
    # Rows that sit on tree thresholds: exactly, and one float64 and one float32 step to either side.
    edge: dict[Any, list[float]] = {}
    for k in keys:
        points = hints.get(k, _Hint()).points
        if points and k not in text:
            chosen = rng.choice(np.asarray(points), size=min(len(points), 12), replace=False)
            for p in chosen:
                p32 = np.float32(p)
                edge.setdefault(k, []).extend(
                    [
                        float(np.nextafter(p, -np.inf)),
                        float(np.nextafter(p, np.inf)),
                        float(p),
                        float(p32),
                        float(np.nextafter(p32, np.float32(-np.inf))),
                        float(np.nextafter(p32, np.float32(np.inf))),
                    ]
                )
    if edge:
        extra = sum(len(v) for v in edge.values())
        base = rng.integers(0, rows, extra)
        for k in keys:
            values[k] = np.concatenate([values[k], values[k][base]])
        at = rows
        for k, pts in edge.items():
            values[k][at : at + len(pts)] = pts
            at += len(pts)
    clean = _to_batch(signature, keys, values, columns)
    hostile: list[Batch] = []
    numeric = [k for k in keys if k not in text]
    if numeric:
        for bad in (np.nan, np.inf, -np.inf, 1e300):
            row = {k: v[:1].copy() for k, v in values.items()}
            row[numeric[0]][0] = bad
            hostile.append(_to_batch(signature, keys, row, columns))
    for k in keys:
        if k in text:
            row = {k2: v[:1].copy() for k2, v in values.items()}
            row[k][0] = UNSEEN
            hostile.append(_to_batch(signature, keys, row, columns))
    return clean, hostile


def _to_batch(signature: Signature, keys: list[Any], values: dict[Any, np.ndarray], columns: list[str] | None) -> Batch:
    if columns is None:
        spec = signature.inputs[0]
        x = np.stack([values[k] for k in keys], axis=1)
        if len(spec.shape) == 1:
            x = x[:, 0]
        return {spec.name: _cast(x, spec.dtype)}
    return {s.name: _cast(values[s.name], s.dtype) for s in signature.inputs}


def _cast(x: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    if dtype.kind in "iu":
        return np.nan_to_num(np.round(x), nan=0, posinf=0, neginf=0).astype(dtype)
    if dtype.kind == "b":
        return np.asarray(x, dtype=np.float64) > 0 if x.dtype.kind != "O" else x.astype(bool)
    return x.astype(dtype)


def compare(ref: Any, got: Any, *, exact: bool) -> str | None:
    """None when ``got`` agrees with ``ref``, else what differs (for the log)."""
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.shape != got.shape:
        return f"shape {list(got.shape)} instead of {list(ref.shape)}"
    if exact or ref.dtype.kind not in "fc" or got.dtype.kind not in "fc":
        if ref.dtype.kind != got.dtype.kind and not (ref.dtype.kind in "OUS" and got.dtype.kind in "OUS"):
            return f"dtype {got.dtype} instead of {ref.dtype}"
        bad = ref != got
        if ref.dtype.kind == "f":
            bad &= ~(np.isnan(ref) & np.isnan(got))
        bad = np.asarray(bad).reshape(len(ref), -1).any(axis=1) if ref.ndim else np.atleast_1d(bad)
        if bad.any():
            i = int(np.argmax(bad))
            return f"labels differ on {int(bad.sum())} of {bad.size} rows (row {i}: {got[i]!r} instead of {ref[i]!r})"
        return None
    both_nan = np.isnan(ref) & np.isnan(got)
    scale = float(np.nanmax(np.abs(ref))) if np.isfinite(ref).any() else 1.0
    bound = RTOL * np.abs(ref) + ATOL * max(1.0, scale)
    with np.errstate(invalid="ignore"):
        bad = ~((np.abs(got - ref) <= bound) | both_nan)
    if bad.any():
        at = tuple(int(v) for v in np.argwhere(bad)[0])
        return (
            f"values differ beyond 1e-9 relative at {int(bad.sum())} places "
            f"(at {list(at)}: {got[at]!r} instead of {ref[at]!r})"
        )
    return None


def max_relative(ref: Any, got: Any) -> float:
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.dtype.kind not in "fc" or ref.shape != got.shape or not ref.size:
        return 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(got - ref) / np.maximum(np.abs(ref), np.finfo(np.float64).tiny)
    rel = rel[np.isfinite(rel)]
    return float(rel.max()) if rel.size else 0.0


@dataclass
class Verdict:
    """The check's outcome for each output: None = agrees, else the reason it was refused."""

    refused: dict[str, str]
    rows: int
    worst: float


def _rows(batch: Batch, sel: Any) -> Batch:
    return {k: v[sel] for k, v in batch.items()}


def _native(native: Callable[[Batch], Batch], batch: Batch) -> Batch:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return native(batch)


def verify(
    native: Callable[[Batch], Batch],
    kernel: Kernel,
    outputs: list[str],
    exact: set[str],
    batches: list[Batch],
    hostile: list[Batch],
) -> Verdict:
    """Run native and compiled on every validation batch and judge each output."""
    refused: dict[str, str] = {}
    worst = 0.0
    total = 0

    def judge(ref: Batch, got: dict[str, np.ndarray], where: str) -> None:
        nonlocal worst
        for name in outputs:
            if name in refused:
                continue
            if name not in got:
                refused[name] = "the kernel does not produce it"
                continue
            problem = compare(ref[name], got[name], exact=name in exact)
            if problem:
                refused[name] = f"{problem} {where}"
            else:
                worst = max(worst, max_relative(ref[name], got[name]))

    from modelport.runtimes.compile.kernels import Fallback

    for batch in batches:
        n = len(next(iter(batch.values())))
        try:
            ref = _native(native, batch)
        except Exception:
            # Some generated rows are ones the model refuses: check those one at a time below.
            ok = []
            for i in range(n):
                try:
                    _native(native, _rows(batch, slice(i, i + 1)))
                    ok.append(i)
                except Exception:
                    hostile.append(_rows(batch, slice(i, i + 1)))
            if not ok:
                continue
            batch = _rows(batch, np.asarray(ok))
            n = len(ok)
            ref = _native(native, batch)
        try:
            got = kernel(batch)
        except Fallback:
            got = None
        except Exception as exc:
            return Verdict(dict.fromkeys(outputs, f"the kernel failed: {type(exc).__name__}: {exc}"), total, worst)
        if got is not None:
            total += n
            judge(ref, got, f"on {n} validation rows")
        for i in range(min(n, 12)):
            one = _rows(batch, slice(i, i + 1))
            try:
                got1 = kernel(one)
            except Fallback:
                continue
            total += got is None
            judge(_native(native, one), got1, f"on validation row {i} alone")
    for one in hostile:
        expected: Batch | None
        try:
            expected = _native(native, one)
        except Exception:
            expected = None
        try:
            got1 = kernel(one)
        except Fallback:
            continue  # the native model answers these
        except Exception as exc:
            if expected is not None:
                for name in outputs:
                    refused.setdefault(name, f"the kernel failed on an edge-case row: {type(exc).__name__}: {exc}")
            continue  # both refuse the row
        if expected is None:
            for name in outputs:
                refused.setdefault(name, "the kernel answers a row the native model refuses")
        else:
            total += 1
            judge(expected, got1, "on an edge-case row (NaN, infinity or an unseen category)")
    if not total:
        # Nothing was compared (the model refused every generated row, or the kernel handed
        # every batch back): no evidence, so no compiled output.
        for name in outputs:
            refused.setdefault(name, "no validation row was both accepted by the model and answered by the kernel")
    return Verdict(refused, total, worst)
