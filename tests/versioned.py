"""Repositories whose versions answer their own number, so a test can tell which version replied."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import joblib
import numpy as np

ROW = [[0.5, 1.5]]


def constant_model(value: float) -> object:
    """A regressor that predicts ``value`` for any row of two features."""
    from sklearn.dummy import DummyRegressor

    return DummyRegressor(strategy="constant", constant=value).fit(np.zeros((4, 2)), np.zeros(4))


def add_version(model_dir: Path, version: int, *, value: float | None = None, broken: bool = False) -> Path:
    """Write version ``version`` beside the model directory, then move it in with one rename.

    The rename is what an operator should do too: a poll never sees a half-written version.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=model_dir.parent, prefix=".staging-"))
    if broken:
        (staging / "model.joblib").write_bytes(b"not a pickle at all")
    else:
        joblib.dump(constant_model(float(version if value is None else value)), staging / "model.joblib")
    target = model_dir / str(version)
    os.rename(staging, target)
    return target


def remove_version(model_dir: Path, version: int) -> None:
    """Move the version out of the model directory in one rename, then delete it."""
    gone = model_dir.parent / f".removed-{model_dir.name}-{version}"
    os.rename(model_dir / str(version), gone)
    shutil.rmtree(gone)


def write_config(model_dir: Path, text: str) -> None:
    """Replace modelport.toml atomically."""
    tmp = model_dir.parent / f".{model_dir.name}.toml.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, model_dir / "modelport.toml")


def traffic_toml(weights: dict[int, float], *, sticky: str | None = None, shadow: int | None = None) -> str:
    lines = ["[traffic]", "weights = {" + ", ".join(f"{k} = {v}" for k, v in weights.items()) + "}"]
    if sticky:
        lines.append(f'sticky_header = "{sticky}"')
    if shadow is not None:
        lines.append(f"shadow = {shadow}")
    return "\n".join(lines) + "\n"


def v2_body(rows: list[list[float]] = ROW) -> dict[str, object]:
    return {"inputs": [{"name": "input", "shape": [len(rows), 2], "datatype": "FP64", "data": rows}]}
