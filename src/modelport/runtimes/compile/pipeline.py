"""Preprocessing steps, ColumnTransformers and Pipelines as numpy closures.

A step receives either a float matrix or, at the front of a DataFrame model, the Batch's
dict of columns, which it reads by name: no pandas DataFrame is built per request.
Each transform repeats scikit-learn's own arithmetic in its order (``X -= mean_;
X /= scale_`` and so on) and leaves NaN where scikit-learn leaves it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from modelport.runtimes.compile.kernels import HEADS, STEPS, Fallback, Head, NotCompilable, Step, Table, type_name

__all__ = ["Columns", "builtin_steps", "compile_chain", "compile_estimator", "matrix"]

Columns = Sequence[str] | None
"""The named columns a step reads from the Batch, or None when it receives a matrix."""


def matrix(cols: Columns, types: dict[str, str], who: str, *, text_ok: bool = False) -> Callable[[Table], np.ndarray]:
    """How a step gets its 2-D input: the matrix itself, or named Batch columns stacked."""
    if cols is None:
        return lambda t: t
    names = list(cols)
    text = [c for c in names if types.get(c) == "BYTES"]
    if text and not text_ok:
        raise NotCompilable(f"{who} receives text column(s) {', '.join(text)}")
    if text:
        return lambda t: np.stack([np.asarray(t[c], dtype=object) for c in names], axis=1)
    return lambda t: np.stack([np.asarray(t[c], dtype=np.float64) for c in names], axis=1)


def _attr(est: Any, name: str) -> np.ndarray:
    return np.asarray(getattr(est, name), dtype=np.float64)


def standard_scaler(est: Any, cols: Columns, types: dict[str, str]) -> Step:
    get = matrix(cols, types, "StandardScaler")
    mean = _attr(est, "mean_") if est.with_mean else None
    scale = _attr(est, "scale_") if est.with_std and est.scale_ is not None else None

    def run(t: Table) -> np.ndarray:
        x = get(t)
        if mean is not None:
            x = x - mean
        if scale is not None:
            x = x / scale
        return x

    return run


def robust_scaler(est: Any, cols: Columns, types: dict[str, str]) -> Step:
    get = matrix(cols, types, "RobustScaler")
    center = _attr(est, "center_") if est.with_centering else None
    scale = _attr(est, "scale_") if est.with_scaling else None

    def run(t: Table) -> np.ndarray:
        x = get(t)
        if center is not None:
            x = x - center
        if scale is not None:
            x = x / scale
        return x

    return run


def min_max_scaler(est: Any, cols: Columns, types: dict[str, str]) -> Step:
    get = matrix(cols, types, "MinMaxScaler")
    scale, low = _attr(est, "scale_"), _attr(est, "min_")
    clip = (float(est.feature_range[0]), float(est.feature_range[1])) if est.clip else None

    def run(t: Table) -> np.ndarray:
        x = get(t) * scale
        x += low
        if clip is not None:
            np.clip(x, clip[0], clip[1], out=x)
        return x

    return run


def max_abs_scaler(est: Any, cols: Columns, types: dict[str, str]) -> Step:
    get = matrix(cols, types, "MaxAbsScaler")
    scale = _attr(est, "scale_")
    clip = bool(getattr(est, "clip", False))

    def run(t: Table) -> np.ndarray:
        x = get(t) / scale
        if clip:
            np.clip(x, -1.0, 1.0, out=x)
        return x

    return run


def simple_imputer(est: Any, cols: Columns, types: dict[str, str]) -> Step:
    missing = est.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise NotCompilable(f"SimpleImputer with missing_values={missing!r} (only NaN is compiled)")
    if est.add_indicator:
        raise NotCompilable("SimpleImputer with add_indicator=True")
    stats = np.asarray(est.statistics_)
    text = stats.dtype.kind == "O"
    if not text and not getattr(est, "keep_empty_features", False) and np.isnan(stats).any():
        raise NotCompilable("SimpleImputer drops features it saw no values for")
    get = matrix(cols, types, "SimpleImputer", text_ok=text)
    if text:
        if any(isinstance(s, float) and s != s for s in stats):
            raise NotCompilable("SimpleImputer drops features it saw no values for")

        def run_text(t: Table) -> np.ndarray:
            x = np.array(get(t), dtype=object)
            mask = np.not_equal(x, x).astype(bool)  # NaN is the only value unequal to itself
            if mask.any():
                rows, cols_ = np.nonzero(mask)
                x[rows, cols_] = stats[cols_]
            return x

        return run_text

    def run(t: Table) -> np.ndarray:
        x = np.array(get(t), dtype=np.float64)
        mask = np.isnan(x)
        if mask.any():
            rows, cols_ = np.nonzero(mask)
            x[rows, cols_] = stats[cols_]
        return x

    return run


def one_hot_encoder(est: Any, cols: Columns, types: dict[str, str]) -> Step:
    if getattr(est, "_infrequent_enabled", False):
        raise NotCompilable("OneHotEncoder with infrequent categories (min_frequency / max_categories)")
    get = matrix(cols, types, "OneHotEncoder", text_ok=True)
    drop = est.drop_idx_
    lookups: list[dict[Any, int]] = []
    text: list[bool] = []
    width = 0
    for i, cats in enumerate(est.categories_):
        cats = np.asarray(cats)
        if any(c is None or (isinstance(c, float) and c != c) for c in cats.tolist()):
            raise NotCompilable(f"OneHotEncoder feature {i} has a missing-value category")
        d = None if drop is None or drop[i] is None else int(drop[i])
        table: dict[Any, int] = {}
        for j, c in enumerate(cats.tolist()):
            if j == d:
                table[c] = -1  # the dropped category: a row of zeros
            else:
                table[c] = width
                width += 1
        lookups.append(table)
        text.append(cats.dtype.kind in "OUS")
    ignore = est.handle_unknown in {"ignore", "infrequent_if_exist"} and drop is None

    def run(t: Table) -> np.ndarray:
        x = get(t)
        n = x.shape[0]
        out = np.zeros((n, width), dtype=np.float64)
        for i, table in enumerate(lookups):
            values = x[:, i].tolist()
            if text[i] and not all(type(v) is str for v in values):
                raise Fallback  # numbers where names are expected: let scikit-learn judge
            pos = [table.get(v) for v in values]
            for r, p in enumerate(pos):
                if p is None:
                    if not ignore:
                        raise Fallback  # unknown category: scikit-learn raises or warns
                elif p >= 0:
                    out[r, p] = 1.0
        return out

    return run


def passthrough(cols: Columns, types: dict[str, str]) -> Step:
    get = matrix(cols, types, "passthrough")
    return lambda t: np.asarray(get(t), dtype=np.float64)


def function_transformer(est: Any, cols: Columns, types: dict[str, str]) -> Step:
    # ColumnTransformer stores a fitted 'passthrough' as FunctionTransformer(func=None).
    if est.func is not None:
        raise NotCompilable("FunctionTransformer with a function")
    return passthrough(cols, types)


def column_transformer(est: Any, cols: Columns, types: dict[str, str]) -> Step:
    if est.transformer_weights:
        raise NotCompilable("ColumnTransformer with transformer_weights")
    index = est._transformer_to_input_indices
    parts: list[tuple[np.ndarray | None, Step]] = []
    for name, trans, selection in est.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        positions = [int(i) for i in index[name]]
        if not positions:
            continue
        if np.isscalar(selection) and not (isinstance(trans, str) and trans == "passthrough"):
            raise NotCompilable(f"ColumnTransformer part '{name}' takes a single column as 1-D input")
        # A matrix is sliced here; named columns are read by the part's own first step.
        pick = np.asarray(positions, dtype=np.intp) if cols is None else None
        sub = None if cols is None else [cols[i] for i in positions]
        if isinstance(trans, str) and trans == "passthrough":
            parts.append((pick, passthrough(sub, types)))
        else:
            parts.append((pick, compile_chain(trans, sub, types)))

    def run(t: Table) -> np.ndarray:
        outs = [inner(t if pick is None else t[:, pick]) for pick, inner in parts]
        return np.hstack(outs) if len(outs) > 1 else outs[0]

    return run


def compile_chain(est: Any, cols: Columns, types: dict[str, str]) -> Step:
    """A transformer or a Pipeline of transformers as one Step."""
    steps = getattr(est, "steps", None)
    if steps is not None:
        return _chain([s for _, s in steps], cols, types)
    builder = STEPS.get(type(est))
    if builder is None:
        raise NotCompilable(f"no kernel for {type_name(est)}; supported steps: {supported(STEPS)}")
    return builder(est, cols, types)


def _chain(steps: list[Any], cols: Columns, types: dict[str, str]) -> Step:
    chain: list[Step] = []
    for step in steps:
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        chain.append(compile_chain(step, cols if not chain else None, types))
    if not chain:
        return matrix(cols, types, "passthrough")

    def run(t: Table) -> np.ndarray:
        for s in chain:
            t = s(t)
        return t

    return run


def compile_estimator(est: Any, cols: Columns, types: dict[str, str]) -> Head:
    """A fitted estimator or Pipeline as a function from its input to its outputs."""
    steps = getattr(est, "steps", None)
    final = steps[-1][1] if steps is not None else est
    if not hasattr(final, "predict"):
        chain = compile_chain(est, cols, types)
        return lambda t: {"transform": chain(t)}
    head = _head(final)
    pre = _chain([s for _, s in steps[:-1]], cols, types) if steps is not None else matrix(cols, types, type_name(est))

    def run(t: Table) -> dict[str, np.ndarray]:
        return head(pre(t))

    # A head may say from how many rows on the native estimator is the faster runtime.
    run.native_above = getattr(head, "native_above", None)  # type: ignore[attr-defined]
    return run


def _head(est: Any) -> Head:
    builder = HEADS.get(type(est))
    if builder is None:
        raise NotCompilable(f"no kernel for {type_name(est)}; supported estimators: {supported(HEADS)}")
    return builder(est)


def supported(table: dict[type, Any]) -> str:
    return ", ".join(sorted({cls.__name__ for cls in table}))


def builtin_steps() -> dict[type, Any]:
    from sklearn import compose, impute, preprocessing

    return {
        preprocessing.StandardScaler: standard_scaler,
        preprocessing.RobustScaler: robust_scaler,
        preprocessing.MinMaxScaler: min_max_scaler,
        preprocessing.MaxAbsScaler: max_abs_scaler,
        preprocessing.OneHotEncoder: one_hot_encoder,
        preprocessing.FunctionTransformer: function_transformer,
        impute.SimpleImputer: simple_imputer,
        compose.ColumnTransformer: column_transformer,
    }
