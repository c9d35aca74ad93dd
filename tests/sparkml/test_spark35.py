"""Models saved by Spark 3.5 (committed fixtures) give the outputs Spark 3.5 computed.

The fixtures and expected.json come from tests/fixtures/sparkml/make_spark35.py, run with pyspark 3.5.
No Spark is needed here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sparkml" / "spark35"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file()) if FIXTURES.is_dir() else []


def _num(values: list[Any]) -> np.ndarray:
    return np.array(
        [
            [np.nan if x == "NaN" else x for x in v] if isinstance(v, list) else (np.nan if v in (None, "NaN") else v)
            for v in values
        ],
        dtype=np.float64,
    )


@pytest.mark.parametrize("case", CASES)
def test_spark35_fixture(case: str) -> None:
    expected = json.loads((FIXTURES / case / "expected.json").read_text())
    assert expected["spark_version"].startswith("3.5")
    wanted = list(expected["outputs"])
    from modelport.config import ModelConfig

    model = modelport.load_model(FIXTURES / case / "model", config=ModelConfig(outputs=tuple(wanted)))
    assert model.info["spark_version"].startswith("3.5")
    batch: dict[str, Any] = {}
    for spec in model.signature.inputs:
        values = expected["inputs"][spec.name]
        batch[spec.name] = values if spec.datatype == "BYTES" else _num(values)
    got = model.predict(batch)
    for name in wanted:
        want = expected["outputs"][name]
        first = next((v for v in want if v is not None), None)
        if isinstance(first, str) or (isinstance(first, list) and first and isinstance(first[0], str)):
            assert [list(x) if isinstance(x, list) else x for x in got[name].tolist()] == want, name
        elif isinstance(first, list) and not first:
            assert [list(x) for x in got[name].tolist()] == want, name
        else:
            np.testing.assert_allclose(got[name], _num(want), rtol=0, atol=1e-9, err_msg=name)


def test_fixtures_are_small() -> None:
    total = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    assert CASES and total < 2_000_000
