"""What a fitted model knows about its inputs: feature names, known categories, typical values.

Two readers need it. The compile agreement check (``compile/check.py``) generates validation rows
around the values a model was fitted on, and the web page (``server/ui.py``) builds a form with one
labelled field per feature, a select for categorical inputs and example values that make sense.

Sources, most specific first: an ``examples.json`` file beside the artifact (a JSON list of rows,
each an object from input name to that row's value), an MLflow ``input_example``, then what the
fitted model itself implies (scikit-learn scaler means, imputer statistics, encoder categories,
tree thresholds; Spark StringIndexer labels, Imputer surrogates, scaler means through a
VectorAssembler). Nothing here imports a framework: it reads the objects the flavors already loaded.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FieldHint", "Hint", "estimator_hints", "example_rows", "model_hints"]

log = logging.getLogger("modelport.hints")

EXAMPLES_FILE = "examples.json"


@dataclass
class Hint:
    """What an estimator knows about one input column or feature position."""

    center: float = 0.0
    scale: float = 1.0
    points: list[float] = field(default_factory=list)
    categories: list[Any] | None = None
    nan_ok: bool = False
    known: bool = False  # center came from the model, not the default


@dataclass
class FieldHint:
    """One field of an input as the web form shows it."""

    label: str
    categories: list[Any] | None = None
    example: Any = None


def estimator_hints(est: Any, keys: list[Any], out: dict[Any, Hint]) -> None:
    """Fill ``out`` with what ``est`` knows about the inputs named by ``keys`` (column names or positions)."""
    name = type(est).__name__
    steps = getattr(est, "steps", None)
    if steps is not None:
        for _, step in steps:
            if step is not None and not isinstance(step, str):
                estimator_hints(step, keys, out)
                break  # later steps see transformed features
        return
    if name == "ColumnTransformer":
        index = est._transformer_to_input_indices
        for part, trans, _ in est.transformers_:
            if not isinstance(trans, str):
                estimator_hints(trans, [keys[i] for i in index[part] if i < len(keys)], out)
        return
    hints = [out.setdefault(k, Hint()) for k in keys]
    if name in {"StandardScaler", "RobustScaler"}:
        center = getattr(est, "mean_", None) if name == "StandardScaler" else getattr(est, "center_", None)
        scale = getattr(est, "scale_", None)
        for i, h in enumerate(hints):
            if center is not None:
                h.center, h.known = float(center[i]), True
            h.scale = float(scale[i]) if scale is not None else h.scale
    elif name == "MinMaxScaler":
        for i, h in enumerate(hints):
            lo, hi = float(est.data_min_[i]), float(est.data_max_[i])
            h.center, h.scale, h.known = (lo + hi) / 2, max((hi - lo) / 2, 1e-3), True
    elif name == "MaxAbsScaler":
        for i, h in enumerate(hints):
            h.scale = float(est.max_abs_[i]) or 1.0
    elif name == "SimpleImputer":
        for h in hints:
            h.nan_ok = True
        stats = np.asarray(est.statistics_)
        if stats.dtype.kind in "fiu":
            for i, h in enumerate(hints):
                if np.isfinite(stats[i]):
                    h.center, h.known = float(stats[i]), True
    elif name in {"OneHotEncoder", "OrdinalEncoder"}:
        for i, h in enumerate(hints):
            h.categories = list(np.asarray(est.categories_[i]).tolist())
    elif name in {"LGBMClassifier", "LGBMRegressor"} or (
        name == "Booster" and type(est).__module__.startswith("lightgbm")
    ):
        booster = est.booster_ if hasattr(est, "booster_") else est
        stack = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node and isinstance(node.get("threshold"), int | float):
                if node["split_feature"] < len(hints):
                    hints[node["split_feature"]].points.append(float(node["threshold"]))
                stack.extend((node["left_child"], node["right_child"]))
        _center_on_points(hints)
    elif hasattr(est, "tree_") or hasattr(est, "estimators_"):
        trees = [est] if hasattr(est, "tree_") else list(np.ravel(est.estimators_))
        for t in trees:
            tree = getattr(t, "tree_", None)
            if tree is None:
                continue
            inner = tree.children_left != -1
            for f, thr in zip(tree.feature[inner], tree.threshold[inner], strict=True):
                if f < len(hints):
                    hints[f].points.append(float(thr))
        _center_on_points(hints)


def _center_on_points(hints: list[Hint]) -> None:
    for h in hints:
        if h.points:
            h.center, h.known = float(np.median(h.points)), True


def _unwrap(predictor: Any) -> Any:
    """The flavor's own predictor under compiled, cached and MLflow wrappers (loads a lazy native one)."""
    seen = 0
    while seen < 8:
        seen += 1
        native = getattr(predictor, "native", None)
        if callable(native):  # compile.cache.LazyNative: the native model loads on first need
            predictor = native()
            continue
        if native is not None:  # flavors.mlflow.MlflowPredictor
            predictor = native
            continue
        inner = predictor.__dict__.get("inner") if hasattr(predictor, "__dict__") else None
        if inner is not None:
            predictor = inner
            continue
        return predictor
    return predictor


def _round(value: float) -> float:
    """Examples a person can read: four significant digits."""
    return float(f"{value:.4g}") if np.isfinite(value) else value


def _estimator_fields(predictor: Any, signature: Any) -> dict[str, list[FieldHint]]:
    """scikit-learn estimators and LightGBM boosters: what ``estimator_hints`` reads from them."""
    est = getattr(predictor, "estimator", None)
    if est is None:
        est = predictor.booster
    columns: list[str] | None = getattr(predictor, "columns", None)
    spec = signature.inputs[0]
    if columns is None:
        n = spec.shape[1] if len(spec.shape) == 2 and spec.shape[1] > 0 else 1
        keys: list[Any] = list(range(n))
    else:
        keys = list(columns)
    hints: dict[Any, Hint] = {}
    estimator_hints(est, keys, hints)
    names = getattr(est, "feature_names_in_", None)

    def field_for(key: Any, label: str) -> FieldHint:
        h = hints.get(key, Hint())
        if h.categories:
            return FieldHint(label, [_plain(c) for c in h.categories], _plain(h.categories[0]))
        return FieldHint(label, None, _round(h.center) if h.known else None)

    if columns is None:
        labels = [str(names[i]) if names is not None and i < len(names) else f"{spec.name}[{i}]" for i in keys]
        return {spec.name: [field_for(k, lab) for k, lab in zip(keys, labels, strict=True)]}
    return {c: [field_for(c, c)] for c in columns}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _spark_fields(pipeline: Any) -> dict[str, list[FieldHint]]:
    out: dict[str, FieldHint] = {}
    sources = set(pipeline.sources)
    for stage in pipeline.stages:
        kind = type(stage).__name__
        if kind == "StringIndexerModel":
            for (src, _), labels in zip(stage.pairs, stage.labels, strict=True):
                if src in sources:
                    out[src] = FieldHint(src, list(labels), labels[0] if labels else None)
        elif kind == "ImputerModel":
            for (src, _), value in zip(stage.pairs, stage.surrogates, strict=True):
                if src in sources and src not in out:
                    out[src] = FieldHint(src, None, _round(value))
    # Scaler statistics reach the source columns through the assembler that feeds the scaler.
    assemblers = {s.out_col: s for s in pipeline.stages if type(s).__name__ == "VectorAssembler"}
    for stage in pipeline.stages:
        kind = type(stage).__name__
        centers = None
        if kind == "StandardScalerModel":
            centers = stage.mean
        elif kind == "MinMaxScalerModel":
            centers = (stage.lo + stage.hi) / 2 if hasattr(stage, "hi") else stage.lo
        source = stage.inputs[0] if stage.inputs else None
        if centers is None or source not in assemblers:
            continue
        assembler, at = assemblers[source], 0
        for col, size in zip(assembler.inputs, assembler.sizes, strict=False):
            if size is None:
                break
            if size == 1 and col in sources and col not in out and at < len(centers):
                out[col] = FieldHint(col, None, _round(float(centers[at])))
            at += size
    return {name: [hint] for name, hint in out.items()}


def example_rows(source: str | None) -> list[dict[str, Any]]:
    """Rows from ``examples.json`` beside the artifact, else from an MLflow ``input_example``."""
    if not source or "://" in source:
        return []
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    try:
        candidate = folder / EXAMPLES_FILE
        if candidate.is_file():
            rows = json.loads(candidate.read_text(encoding="utf-8"))
            if isinstance(rows, dict):
                rows = [rows]
            if isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
                return rows
            log.warning("%s: expected a JSON list of rows (objects from input name to value); ignored", candidate)
            return []
        return _mlflow_example(folder)
    except (OSError, ValueError) as exc:
        log.warning("%s: could not read the example rows: %s", folder, exc)
        return []


def _mlflow_example(folder: Path) -> list[dict[str, Any]]:
    for name in ("input_example.json", "serving_input_example.json"):
        file = folder / name
        if not file.is_file():
            continue
        data = json.loads(file.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "dataframe_split" in data:
            data = data["dataframe_split"]
        if isinstance(data, dict) and "columns" in data and "data" in data:  # pandas "split" orientation
            return [dict(zip(data["columns"], row, strict=False)) for row in data["data"]]
        if isinstance(data, dict) and "inputs" in data:
            data = data["inputs"]
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data
        if isinstance(data, dict):
            columns = list(data.values())
            if columns and all(isinstance(v, list) for v in columns) and len({len(v) for v in columns}) == 1:
                return [{k: v[i] for k, v in data.items()} for i in range(len(columns[0]))]
    return []


def model_hints(model: Any) -> dict[str, list[FieldHint]]:
    """Per input: one FieldHint per field the form shows (one for a column, one per feature of a row array).

    Inputs the model knows nothing about are absent; the form falls back to the signature.
    """
    signature = model.signature
    fields: dict[str, list[FieldHint]] = {}
    try:
        predictor = _unwrap(model.predictor)
        if hasattr(predictor, "estimator") or hasattr(predictor, "booster"):
            fields = _estimator_fields(predictor, signature)
        elif hasattr(predictor, "stages") and hasattr(predictor, "sources"):
            fields = _spark_fields(predictor)
    except Exception:  # hints are a convenience: a model we cannot read still gets a plain form
        log.exception("model '%s': could not read what the model knows about its inputs", model.name)
    rows = example_rows(getattr(model, "source", None))
    if rows:
        first = rows[0]
        for spec in signature.inputs:
            if spec.name not in first:
                continue
            value = first[spec.name]
            current = fields.get(spec.name)
            if isinstance(value, list) and current and len(current) == len(value):
                for hint, v in zip(current, value, strict=True):
                    hint.example = v
            elif current and len(current) == 1:
                current[0].example = value
            else:
                fields[spec.name] = [FieldHint(spec.name, None, value)]
    return fields
