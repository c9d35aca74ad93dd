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
from tests.tolerance import assert_close

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
    from modelport.core.config import ModelConfig

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
            assert_close(got[name], _num(want), what=name)


def test_fixtures_are_small() -> None:
    total = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    assert CASES and total < 2_000_000


def test_load_and_predict_with_pyspark_blocked(tmp_path: Path) -> None:
    """In a process where importing pyspark or py4j raises, a Spark pipeline still loads and predicts."""
    import os
    import subprocess
    import sys
    import textwrap

    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import sys

            class _Block:
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] in ("pyspark", "py4j"):
                        raise ImportError(f"{name} is blocked in this test")
                    return None

            sys.meta_path.insert(0, _Block())
            """
        )
    )
    model_dir = FIXTURES / "penguins_lr" / "model"
    script = textwrap.dedent(
        f"""
        import json, sys
        try:
            import pyspark
        except ImportError:
            pass
        else:
            raise SystemExit("pyspark was importable")
        import modelport
        m = modelport.load_model({str(model_dir)!r})
        row = {{"species": ["Adelie"], "island": ["Dream"], "sex": [None], "bill_length_mm": [39.0],
               "bill_depth_mm": [18.0], "flipper_length_mm": [None], "body_mass_g": [3700.0]}}
        out = m.predict(row)
        print(json.dumps({{"species": out["predicted_species"].tolist(),
                          "loaded": sorted(k for k in sys.modules if k.startswith(("pyspark", "py4j")))}}))
        """
    )
    src = Path(__file__).resolve().parents[2] / "src"
    env = dict(os.environ, PYTHONPATH=f"{blocker}{os.pathsep}{src}")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"species": ["Adelie"], "loaded": []}
