from __future__ import annotations

import numpy as np
import pytest

from modelport.core.errors import InvalidInput
from modelport.core.signature import InputPlan, Signature, TensorSpec, datatype_of

SIG = Signature(
    (TensorSpec("x", "FP64", (-1, 3)), TensorSpec("city", "BYTES", (-1,)), TensorSpec("n", "INT64", (-1,))),
    (TensorSpec("y", "FP64", (-1,)),),
)
PLAN = InputPlan("m", SIG)


def test_datatype_names_round_trip() -> None:
    assert datatype_of(np.dtype("float32")) == "FP32"
    assert datatype_of(np.dtype("int64")) == "INT64"
    assert datatype_of(np.dtype("<U5")) == "BYTES"
    assert datatype_of(np.dtype(object)) == "BYTES"


def test_unknown_datatype_is_rejected() -> None:
    with pytest.raises(ValueError, match="not one of"):
        TensorSpec("x", "FLOAT", (-1,))


def test_signature_dict_round_trip() -> None:
    spec = TensorSpec("p", "FP64", (-1, 2), labels=("a", "b"))
    sig = Signature((spec,), (spec,))
    assert Signature.from_dict(sig.to_dict()) == sig
    assert sig.to_dict()["outputs"][0]["parameters"] == {"labels": ["a", "b"]}


def test_coerce_numbers_and_single_row() -> None:
    assert PLAN.coerce("x", [[1, 2, 3]]).dtype == np.float64
    assert PLAN.coerce("x", [1, 2, 3]).shape == (1, 3)
    assert PLAN.coerce("x", [[1, None, 3]])[0, 1] != PLAN.coerce("x", [[1, None, 3]])[0, 1]  # NaN


def test_text_where_numbers_are_required() -> None:
    with pytest.raises(InvalidInput, match="input 'x' must be FP64 numbers, got str value 'a'"):
        PLAN.coerce("x", [[1, "a", 3]])


def test_ragged_rows() -> None:
    with pytest.raises(InvalidInput, match="ragged"):
        PLAN.coerce("x", [[1, 2, 3], [1, 2]])


def test_wrong_shape_names_input_and_shapes() -> None:
    with pytest.raises(InvalidInput, match=r"input 'x' has shape \[2, 2\], expected \[-1, 3\]"):
        PLAN.coerce("x", [[1, 2], [3, 4]])


def test_integer_input_rejects_fractions() -> None:
    with pytest.raises(InvalidInput, match="INT64 integers"):
        PLAN.coerce("n", [1.5])
    assert PLAN.coerce("n", [2.0]).tolist() == [2]


def test_text_input_keeps_strings_and_decodes_bytes() -> None:
    arr = PLAN.coerce("city", ["Oslo", b"Rome"])
    assert arr.dtype == object and arr.tolist() == ["Oslo", "Rome"]


def test_declared_datatype_mismatch() -> None:
    with pytest.raises(InvalidInput, match="input 'city' must have datatype BYTES, got FP32"):
        PLAN.coerce("city", [1.0], datatype="FP32")


def test_batch_checks() -> None:
    good = {"x": np.zeros((2, 3)), "city": np.array(["a", "b"], dtype=object), "n": np.array([1, 2])}
    assert PLAN.check(good) == good
    with pytest.raises(InvalidInput, match="missing input 'n'"):
        PLAN.check({k: v for k, v in good.items() if k != "n"})
    with pytest.raises(InvalidInput, match="unknown input 'z'"):
        PLAN.check({**good, "z": np.zeros(2)})
    with pytest.raises(InvalidInput, match="different numbers of rows"):
        PLAN.check({**good, "n": np.array([1])})
    with pytest.raises(InvalidInput, match="no rows"):
        PLAN.check({k: v[:0] for k, v in good.items()})


def test_arrays_that_already_fit_pass_through_and_anything_else_takes_the_general_path() -> None:
    sig = Signature(
        (TensorSpec("x", "FP64", (-1, 3)), TensorSpec("t", "BYTES", (-1,))), (TensorSpec("y", "FP64", (-1,)),)
    )
    plan = InputPlan("m", sig)
    x = np.ones((2, 3))
    t = np.array(["a", "b"], dtype=object)
    out = plan.coerce_batch({"x": x, "t": t})
    assert out["x"] is x and out["t"] is t  # no copy, no conversion
    # bytes, base64 and float32 need converting: same answers as the general path gives
    mixed = plan.coerce_batch({"x": np.ones((2, 3), np.float32), "t": np.array([b"a", {"b64": "Yg=="}], dtype=object)})
    assert mixed["x"].dtype == np.float64 and mixed["t"].tolist() == ["a", "b"]
    with pytest.raises(InvalidInput, match=r"inputs have different numbers of rows \('x': 2, 't': 1\)"):
        plan.coerce_batch({"x": x, "t": np.array(["a"], dtype=object)})
    with pytest.raises(InvalidInput, match="missing input 't'"):
        plan.coerce_batch({"x": x})
    with pytest.raises(InvalidInput, match=r"input 'x' has shape \[2, 4\], expected \[-1, 3\]"):
        plan.coerce_batch({"x": np.ones((2, 4)), "t": t})
    with pytest.raises(InvalidInput, match="the request has no rows"):
        plan.coerce_batch({"x": np.ones((0, 3)), "t": np.array([], dtype=object)})
    with pytest.raises(InvalidInput, match="unknown input 'z'"):
        plan.coerce_batch({"x": x, "t": t, "z": x})


@pytest.mark.parametrize(
    "values",
    [
        [0.5, -1.25, 3e300, 1e-320],
        [1.5, 2, True, 2**63],  # ints and bools among floats become floats, as numpy makes them
        [1.5, None, 2.0],  # falls back: None is a missing value
        [1.5, "NaN"],  # falls back: text
        [1.5, 10**400],  # falls back: past float range
        [[1.5, 2.0], [3.0, 4.0]],  # not a float first: numpy's way
    ],
)
def test_the_fast_float_list_conversion_matches_numpys(values: list[object]) -> None:
    from modelport.core.signature import _floats

    try:
        want = np.asarray(values)
    except (ValueError, OverflowError) as exc:
        with pytest.raises(type(exc)):
            _floats(values)
        return
    got = _floats(values)
    # Exact: both convert each Python number to the same IEEE double; no arithmetic happens.
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_a_float_list_decodes_through_the_plan_as_before() -> None:
    spec = TensorSpec("x", "FP32", [-1, 2])
    plan = InputPlan("m", Signature((spec,), ()))
    got = plan.coerce_shaped("x", [0.5, 1.5, 2.5, 3.5], "FP32", [2, 2])
    assert got.dtype == np.float32 and got.tolist() == [[0.5, 1.5], [2.5, 3.5]]
    with pytest.raises(InvalidInput, match="must be FP32 numbers"):
        plan.coerce_shaped("x", [0.5, "a", 2.5, 3.5], "FP32", [2, 2])
