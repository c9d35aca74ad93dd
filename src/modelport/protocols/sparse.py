"""Vector outputs in sparse form, when a client asks for it per output.

Spark keeps many vectors sparse (HashingTF, CountVectorizer, IDF, OneHotEncoder, selectors, ...);
answers are dense unless the request asks otherwise. The sparse form of a row is Spark's layout:
the vector's ``size``, and its ``indices`` (ascending) and ``values``: the row's nonzero entries
(NaN counts as nonzero; a zero Spark happens to store is not sent). A null vector (every entry
null) has no indices.

- V1 rows: each row is ``{"size": k, "indices": [...], "values": [...]}``, or ``null``.
- V2 (JSON, binary, gRPC): the output keeps its name and datatype and holds the values as a
  ``(rows, widest row)`` tensor right-padded with 0; the companion output ``<name>.indices`` (INT64,
  the same shape, padded with -1) holds the indices. Both carry ``lengths`` (each row's number of
  entries, -1 for a null vector, as token outputs do), the values tensor also ``sparse: true`` and
  ``size``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from modelport.core.errors import InvalidInput
from modelport.core.nulls import null_mask
from modelport.core.signature import Signature

__all__ = ["INDICES_SUFFIX", "check_sparse", "sparse_flag", "sparse_rows", "sparse_tensors", "vector_outputs"]

INDICES_SUFFIX = ".indices"


def vector_outputs(signature: Signature) -> tuple[str, ...]:
    """Outputs with a sparse form: numbers with one vector of fixed or free size per row.

    Worked out once per signature (a frozen value) and kept on it: asked by requests that want a sparse form.
    """
    found: tuple[str, ...] | None = signature.__dict__.get("_vector_outputs")
    if found is None:
        found = tuple(s.name for s in signature.outputs if len(s.shape) == 2 and s.datatype not in ("BYTES", "BOOL"))
        object.__setattr__(signature, "_vector_outputs", found)
    return found


def check_sparse(model: str, signature: Signature, names: Iterable[str]) -> frozenset[str]:
    """The outputs asked for in sparse form; InvalidInput (400) for one that is not a vector.

    A name the model does not have is left to the output selection, which names the outputs.
    """
    chosen = frozenset(names)
    if not chosen:
        return chosen
    vectors = vector_outputs(signature)
    known = signature.output_names
    wrong = sorted(n for n in chosen if n in known and n not in vectors)
    if wrong:
        which = f"the vector outputs are: {', '.join(vectors)}" if vectors else "the model has no vector outputs"
        raise InvalidInput(
            f"model '{model}': output{'s' if len(wrong) > 1 else ''} {', '.join(repr(w) for w in wrong)} "
            f"{'are not vectors' if len(wrong) > 1 else 'is not a vector'}, so there is no sparse form; {which}"
        )
    return chosen


def sparse_flag(model: str, output: str, value: Any) -> bool:
    """An output's ``sparse`` parameter: true or false, nothing else."""
    if not isinstance(value, bool):
        raise InvalidInput(
            f"model '{model}': output '{output}' parameter 'sparse' must be true or false, got {value!r}"
        )
    return value


def _row_entries(arr: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Each row's indices and values, and its length (-1 for a null vector)."""

    dense = np.asarray(arr)
    if dense.ndim != 2:
        raise ValueError(f"a sparse form needs a (rows, size) output, got shape {dense.shape}")
    nulls = null_mask(dense) if dense.dtype == np.float64 else None
    null_rows = nulls.all(axis=1) & (dense.shape[1] > 0) if nulls is not None else np.zeros(len(dense), bool)
    indices: list[np.ndarray] = []
    values: list[np.ndarray] = []
    lengths: list[int] = []
    for i, row in enumerate(dense):
        if null_rows[i]:
            indices.append(np.zeros(0, np.int64))
            values.append(np.zeros(0, dense.dtype))
            lengths.append(-1)
            continue
        nz = np.flatnonzero(row != 0)  # NaN != 0: stored, as in Spark
        indices.append(nz.astype(np.int64, copy=False))
        values.append(row[nz])
        lengths.append(len(nz))
    return indices, values, lengths


def sparse_rows(arr: np.ndarray) -> list[dict[str, Any] | None]:
    """V1: one ``{"size", "indices", "values"}`` object per row (None for a null vector); values stay numpy."""
    indices, values, lengths = _row_entries(arr)
    size = int(arr.shape[1])
    return [
        None if n < 0 else {"size": size, "indices": ix.tolist(), "values": v}
        for ix, v, n in zip(indices, values, lengths, strict=True)
    ]


def sparse_tensors(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int], int]:
    """V2: the values rectangle (padded with 0), the indices rectangle (padded with -1), lengths and size."""
    indices, values, lengths = _row_entries(arr)
    width = max(max(lengths, default=0), 0)
    vals = np.zeros((len(lengths), width), dtype=arr.dtype)
    idx = np.full((len(lengths), width), -1, dtype=np.int64)
    for i, n in enumerate(lengths):
        if n > 0:
            vals[i, :n] = values[i]
            idx[i, :n] = indices[i]
    return vals, idx, lengths, int(arr.shape[1])
