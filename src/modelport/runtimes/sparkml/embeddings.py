"""Word2VecModel and the two LSH models (``ml/feature/Word2Vec.scala``, ``ml/feature/LSH.scala``).

Word2Vec: a token list becomes the mean of its known words' vectors (float32 vectors added in
double, divided by the number of tokens, unknown ones included); an empty list gives zeros.

BucketedRandomProjectionLSH: hash ``j`` = ``floor(x · r_j / bucketLength)`` (Spark ≥ 3 keeps the
random unit vectors as a matrix and computes ``floor((1/bucketLength) · (R x))``; older saves keep
a vector list and divide). MinHashLSH: hash ``j`` = ``min over the non-zero indices i of
((1 + i)·a_j + b_j) mod 2038074743`` in 64-bit integers; a vector without a non-zero entry is an
error, as in Spark. Spark outputs an array of one-element vectors; here it is a
``(rows, numHashTables)`` matrix.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector, matrix, read_data
from modelport.runtimes.sparkml.stage import ColumnInfo, Frame, Schema, Stage, param_or, register
from modelport.runtimes.sparkml.vectors import VECTOR_TYPES, SparseRow, invalid, row_dense, row_size, to_dense

__all__ = ["BucketedRandomProjectionLSHModel", "MinHashLSHModel", "Word2VecModel"]

_SPARK = "org.apache.spark.ml.feature."
_HASH_PRIME = 2038074743


@register
class Word2VecModel(Stage):
    """Token list -> the average of its words' vectors."""

    spark_classes = (_SPARK + "Word2VecModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        names = table.column_names
        if "word" in names and "vector" in names:
            words = [str(w) for w in table.column("word").to_pylist()]
            vectors = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
        elif "wordIndex" in names and "wordVectors" in names:  # Spark < 2.2: one row with a map and a flat array
            row = table.to_pylist()[0]
            index = row["wordIndex"]
            index = dict(index) if not isinstance(index, dict) else index
            flat = np.asarray(row["wordVectors"], dtype=np.float32)
            words = sorted(index, key=lambda w: int(index[w]))
            size = len(flat) // max(len(words), 1)
            vectors = flat.reshape(len(words), size)[[int(index[w]) for w in words]]
        else:
            raise ModelLoadError(f"{meta.path}: Word2VecModel data has neither word/vector nor wordIndex/wordVectors")
        self.size = int(param_or(meta, "vectorSize", vectors.shape[1] if vectors.size else 100))
        if vectors.size and vectors.shape[1] != self.size:
            raise ModelLoadError(f"{meta.path}: Word2VecModel vectors have size {vectors.shape[1]}, not {self.size}")
        self.index = {w: i for i, w in enumerate(words)}
        # the float32 vectors as doubles (Spark widens each element before adding)
        self.vectors = vectors.astype(np.float64).reshape(len(words), self.size)
        self.rows: list[list[float]] = self.vectors.tolist()
        self.in_col, self.out_col = self.inputs[0], self.outputs[0]
        self.name = f"{meta.short_class} ({meta.uid})"

    def input_datatype(self, column: str) -> str:
        return "BYTES"

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self.size)

    def setup(self, schema: Schema) -> None:
        schema[self.out_col] = ColumnInfo("vector", self.size)

    def _one(self, tokens: list[str]) -> list[float]:
        if not tokens:
            return [0.0] * self.size
        total = [0.0] * self.size
        for word in tokens:
            i = self.index.get(word)
            if i is not None:
                total = [t + v for t, v in zip(total, self.rows[i], strict=True)]
        n = len(tokens)
        return [t / n for t in total]

    def transform(self, frame: Frame) -> None:
        col = frame[self.in_col]
        out = np.zeros((len(col), self.size), dtype=np.float64)
        for r, tokens in enumerate(col):
            if not isinstance(tokens, list):
                raise invalid(self.name, self.in_col, f"expected a token list, got {tokens!r}")
            if tokens:
                out[r] = self._one(tokens)
        frame[self.out_col] = out

    def row(self, values: dict[str, Any]) -> bool:
        tokens = values[self.in_col]
        if not isinstance(tokens, list):
            return False
        values[self.out_col] = self._one(tokens)
        return True

    def describe(self) -> str:
        return f"Word2VecModel({self.in_col} -> {self.out_col}; {len(self.index)} words, size {self.size})"


class _LSH(Stage):
    num_tables: int = 0

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.in_col, self.out_col = self.inputs[0], self.outputs[0]
        self.name = f"{meta.short_class} ({meta.uid})"

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self.num_tables)

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, -1)

    def setup(self, schema: Schema) -> None:
        schema[self.out_col] = ColumnInfo("vector", self.num_tables)


@register
class BucketedRandomProjectionLSHModel(_LSH):
    spark_classes = (_SPARK + "BucketedRandomProjectionLSHModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        row = read_data(meta.path).to_pylist()[0]
        self.bucket = float(param_or(meta, "bucketLength", math.nan))
        if not self.bucket > 0:
            raise ModelLoadError(f"{meta.path}: BucketedRandomProjectionLSHModel has no positive bucketLength")
        if "randMatrix" in row:
            self.r = matrix(row["randMatrix"])
            self.by_matrix = True
        elif "randUnitVectors" in row:
            value = row["randUnitVectors"]
            self.r = matrix(value) if isinstance(value, dict) else np.array([dense_vector(v) for v in value])
            self.by_matrix = isinstance(value, dict)
        else:
            raise ModelLoadError(f"{meta.path}: BucketedRandomProjectionLSHModel data has no random vectors")
        self.num_tables, self.dim = self.r.shape
        self.r_t = np.ascontiguousarray(self.r.T)

    def _hash(self, x: Any) -> np.ndarray:
        dots = np.asarray(x @ self.r_t)
        out: np.ndarray = np.floor(dots * (1.0 / self.bucket) if self.by_matrix else dots / self.bucket)
        return out

    def transform(self, frame: Frame) -> None:
        x = frame[self.in_col]
        x = x if sp.issparse(x) else to_dense(x)
        if x.shape[1] != self.dim:
            raise invalid(self.name, self.in_col, f"vector of size {x.shape[1]}, expected {self.dim}")
        frame[self.out_col] = self._hash(x)

    def row(self, values: dict[str, Any]) -> bool:
        v = values[self.in_col]
        if not isinstance(v, VECTOR_TYPES) or row_size(v) != self.dim:
            return False
        values[self.out_col] = self._hash(np.array([row_dense(v)], dtype=np.float64))[0].tolist()
        return True

    def describe(self) -> str:
        return f"BucketedRandomProjectionLSHModel({self.in_col} -> {self.out_col}; {self.num_tables} tables)"


@register
class MinHashLSHModel(_LSH):
    spark_classes = (_SPARK + "MinHashLSHModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        if "randCoefficients" not in table.column_names:
            raise ModelLoadError(f"{meta.path}: MinHashLSHModel data has no randCoefficients")
        flat = np.asarray(table.column("randCoefficients")[0].as_py(), dtype=np.int64)
        self.a, self.b = flat[0::2], flat[1::2]
        self.num_tables = len(self.a)

    def _hash_indices(self, idx: np.ndarray) -> list[float]:
        h = ((1 + idx[:, None]) * self.a[None, :] + self.b[None, :]) % _HASH_PRIME
        return h.min(axis=0).astype(np.float64).tolist()

    def transform(self, frame: Frame) -> None:
        x = frame[self.in_col]
        csr = sp.csr_matrix(x if sp.issparse(x) else to_dense(x))
        csr.eliminate_zeros()
        out = np.empty((csr.shape[0], self.num_tables), dtype=np.float64)
        for r in range(csr.shape[0]):
            idx = csr.indices[csr.indptr[r] : csr.indptr[r + 1]].astype(np.int64)
            if not len(idx):
                raise invalid(self.name, self.in_col, "MinHashLSH needs at least one non-zero entry per vector")
            out[r] = self._hash_indices(idx)
        frame[self.out_col] = out

    def row(self, values: dict[str, Any]) -> bool:
        v = values[self.in_col]
        if isinstance(v, SparseRow):
            idx = [i for i, x in zip(v.indices, v.values, strict=True) if x != 0]
        elif isinstance(v, list):
            idx = [i for i, x in enumerate(v) if x != 0]
        else:
            return False
        if not idx:
            return False
        values[self.out_col] = self._hash_indices(np.asarray(idx, dtype=np.int64))
        return True

    def describe(self) -> str:
        return f"MinHashLSHModel({self.in_col} -> {self.out_col}; {self.num_tables} tables)"
