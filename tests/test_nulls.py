"""Null vs NaN in answers (modelport.core.nulls) and the sparse form of vectors (protocols/sparse.py), unit by unit."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from modelport.client import _array, _flat
from modelport.core.errors import InvalidInput
from modelport.core.nulls import json_numbers, null_mask, null_positions, numbers_from_json, text_for_bytes
from modelport.core.signature import NULL, NULL_BITS, Signature, TensorSpec
from modelport.protocols.sparse import check_sparse, sparse_rows, sparse_tensors


def _bits(arr: np.ndarray) -> list[int]:
    return np.ascontiguousarray(arr, dtype=np.float64).view(np.uint64).tolist()


def test_json_writes_null_and_the_special_strings_and_reads_them_back() -> None:
    values = np.array([1.5, NULL, math.nan, math.inf, -math.inf])
    written = orjson.dumps(json_numbers(values))
    assert written == b'[1.5,null,"NaN","Infinity","-Infinity"]'
    back = numbers_from_json(orjson.loads(written), np.dtype(np.float64))
    assert _bits(back)[1] == NULL_BITS and null_positions(back) == [1]
    assert math.isnan(back[2]) and _bits(back)[2] != NULL_BITS  # NaN stays a NaN that is not null
    assert back[3] == math.inf and back[4] == -math.inf and back[0] == 1.5
    # numpy (and so tritonclient's and KServe's as_numpy) reads the strings; null becomes a plain NaN there
    plain = np.array(orjson.loads(written), dtype=np.float64)
    assert plain[0] == 1.5 and np.isnan(plain[1:3]).all() and plain[3] == math.inf and plain[4] == -math.inf


def test_finite_answers_pass_through_untouched() -> None:
    finite = np.arange(40, dtype=np.float64).reshape(20, 2)
    assert json_numbers(finite) is finite and null_mask(finite) is None
    ints = np.array([1, 2])
    assert json_numbers(ints) is ints and null_positions(ints) is None


def test_only_float64_carries_the_null_marker() -> None:
    narrow = np.array([NULL, 1.0], dtype=np.float32)  # the payload does not survive the cast
    assert json_numbers(narrow) == ["NaN", 1.0] and null_positions(narrow) is None


def test_text_nulls_are_listed_and_empty_in_binary() -> None:
    text = np.array(["a", None, "c"], dtype=object)
    assert null_positions(text) == [1]
    assert [text_for_bytes(v) for v in text.tolist()] == [b"a", b"", b"c"]


def test_sparse_layout_of_dense_rows() -> None:
    rows = np.array([[0.0, 2.0, 0.0, math.nan], [NULL] * 4, [0.0] * 4, [1.0, 0.0, 0.0, -1.0]])
    values, indices, lengths, size = sparse_tensors(rows)
    assert size == 4 and lengths == [2, -1, 0, 2]
    assert indices.tolist() == [[1, 3], [-1, -1], [-1, -1], [0, 3]]
    assert values[0, 0] == 2.0 and math.isnan(values[0, 1])  # NaN is a stored entry, as in Spark
    assert values[1:].tolist() == [[0.0, 0.0], [0.0, 0.0], [1.0, -1.0]]
    v1 = sparse_rows(rows)
    assert v1[1] is None and v1[2] == {"size": 4, "indices": [], "values": v1[2]["values"]}  # type: ignore[index]
    assert v1[3] is not None and v1[3]["indices"] == [0, 3] and v1[3]["values"].tolist() == [1.0, -1.0]


def test_sparse_is_only_for_vector_outputs() -> None:
    sig = Signature(
        (TensorSpec("x", "FP64", (-1,)),),
        (TensorSpec("p", "FP64", (-1,)), TensorSpec("v", "FP64", (-1, 8)), TensorSpec("t", "BYTES", (-1, -1))),
    )
    assert check_sparse("m", sig, ["v", "unknown"]) == frozenset({"v", "unknown"})  # unknown: the selection says so
    with pytest.raises(InvalidInput) as err:
        check_sparse("m", sig, ["p", "t"])
    assert err.value.message == (
        "model 'm': outputs 'p', 't' are not vectors, so there is no sparse form; the vector outputs are: v"
    )
    assert err.value.status == 400
    no_vectors = Signature(sig.inputs, sig.outputs[:1])
    with pytest.raises(InvalidInput, match="'p' is not a vector, so there is no sparse form; the model has no vector"):
        check_sparse("m", no_vectors, ["p"])


def test_client_sends_nan_as_nan_and_null_as_null() -> None:
    assert orjson.dumps(_flat(np.array([1.0, NULL, math.nan, math.inf]), "FP64")) == b'[1.0,null,"NaN","Infinity"]'


def test_client_reads_v1_columns() -> None:
    numbers = _array([1.0, None, "NaN", "-Infinity"])
    assert numbers.dtype == np.float64 and null_positions(numbers) == [1]
    assert math.isnan(numbers[2]) and numbers[3] == -math.inf
    assert _array(["NaN", "Infinity"]).tolist() == [pytest.approx(math.nan, nan_ok=True), math.inf]
    text = _array(["a", None])
    assert text.dtype == object and text.tolist() == ["a", None]
    assert _array([None]).tolist() == [None]  # nothing says these are numbers
    nested = _array([[1.0, 2.0], [None, None]])
    assert nested.shape == (2, 2) and null_positions(nested) == [2, 3]
