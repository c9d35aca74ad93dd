"""Small facts of the runtime that need no Spark: Java's number printing, Spark 2's hash, signature rules."""

from __future__ import annotations

import math

import pytest

from modelport.runtimes.sparkml.features import _label_type
from modelport.runtimes.sparkml.text import murmur3_spark2
from modelport.runtimes.sparkml.vectors import as_float, java_double_str


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (-2.5, "-2.5"),
        (0.001, "0.001"),
        (1234567.0, "1234567.0"),
        (1e7, "1.0E7"),
        (12345678.0, "1.2345678E7"),
        (1e20, "1.0E20"),
        (1.5e-5, "1.5E-5"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (math.nan, "NaN"),
        (math.inf, "Infinity"),
    ],
)
def test_java_double_to_string(value: float, text: str) -> None:
    assert java_double_str(value) == text


def test_spark2_murmur3_known_values() -> None:
    # values from the JVM's Murmur3_x86_32.hashUnsafeBytes (seed 42), read through py4j
    assert murmur3_spark2(b"") == 142593372
    assert murmur3_spark2(b"a") == 1485273170
    assert murmur3_spark2(b"abcd") == -396302900
    assert murmur3_spark2(b"abcde") == 814637928
    assert murmur3_spark2("café".encode()) == -1360878028


def test_label_types() -> None:
    assert _label_type(("2007", "2008")) == "INT64"
    assert _label_type(("181.0", "1.0E7")) == "FP64"
    assert _label_type(("Dream", "1.0")) == "BYTES"


def test_param_doubles() -> None:
    assert as_float("-Inf") == -math.inf and as_float("Inf") == math.inf and math.isnan(as_float("NaN"))
    assert as_float(2) == 2.0
