"""Small models and data files for the batch tests, fitted from data that packages ship."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def iris_frame() -> pa.Table:
    """Iris with an id column and snake_case feature columns (scikit-learn's bundled copy)."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    names = np.array(["setosa", "versicolor", "virginica"])
    table = pa.Table.from_pandas(frame.drop(columns="target"), preserve_index=False)
    table = table.add_column(0, "id", pa.array(np.arange(len(frame)), pa.int64()))
    return table.append_column("species", pa.array(names[frame["target"].to_numpy()]))


IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def fit_iris(path: Path) -> Path:
    """A DataFrame model: one FP64 input per column, string class labels."""
    from sklearn.linear_model import LogisticRegression

    table = iris_frame()
    frame = table.select(IRIS_FEATURES).to_pandas()
    model = LogisticRegression(max_iter=1000).fit(frame, table.column("species").to_numpy(zero_copy_only=False))
    joblib.dump(model, path)
    return path


def fit_wine(path: Path) -> Path:
    """An array model: one input ``input`` of shape [-1, 13]."""
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y), path)
    return path


def wine_table() -> pa.Table:
    from sklearn.datasets import load_wine

    X, _ = load_wine(return_X_y=True)
    cols = {"id": pa.array(np.arange(len(X)), pa.int64())}
    cols.update({f"f{i}": pa.array(X[:, i]) for i in range(X.shape[1])})
    return pa.table(cols)


def penguins_table() -> pa.Table:
    """palmerpenguins, as shipped: text columns, and missing values in 11 rows."""
    import palmerpenguins

    frame = palmerpenguins.load_penguins()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.add_column(0, "id", pa.array(np.arange(len(frame)), pa.int64()))


PENGUIN_NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def fit_penguins(path: Path) -> Path:
    """Text (BYTES) and number columns; fitted on complete rows, so rows with NaN make it raise."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = penguins_table().to_pandas().dropna()
    features = frame[["island", *PENGUIN_NUMERIC]]
    pre = ColumnTransformer(
        [("num", StandardScaler(), PENGUIN_NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), ["island"])]
    )
    joblib.dump(make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(features, frame["species"]), path)
    return path


def write(table: pa.Table, path: Path, fmt: str | None = None) -> Path:
    """Write ``table`` as Parquet, CSV or JSON Lines (by extension)."""
    fmt = fmt or path.suffix.lstrip(".")
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=64)
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    elif fmt == "jsonl":
        import orjson

        with path.open("wb") as fh:
            for row in table.to_pylist():
                fh.write(orjson.dumps(row) + b"\n")
    else:
        raise ValueError(fmt)
    return path


def read(path: Path) -> pa.Table:
    """Read an output file back, whatever its format."""
    fmt = path.suffix.lstrip(".")
    if fmt == "parquet":
        return pq.read_table(path)
    if fmt == "csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(path)
    import pyarrow.json as pjson

    return pjson.read_json(path)
