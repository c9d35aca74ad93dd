"""Models saved by Spark 3.x (committed fixtures) give the outputs that Spark version computed.

Every ``tests/fixtures/sparkml/spark3<minor>/`` directory is a version: its cases and their
expected.json come from tests/fixtures/sparkml/make_spark_fixtures.py run with that pyspark.
The ``nulls_*`` cases also hold the probe rows Spark rejected (``errors``) or a skip stage
dropped (``dropped``), each run alone there. No Spark is needed here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.core.config import ModelConfig
from modelport.core.errors import InvalidInput
from modelport.core.signature import NULL
from modelport.runtimes.sparkml.vectors import null_mask
from tests.sparkml._util import run_without_pyspark
from tests.tolerance import assert_close

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "sparkml"
VERSIONS = sorted(p.name for p in ROOT.glob("spark3*") if p.is_dir())
CASES = [
    pytest.param(version, p.name, id=f"{version}-{p.name}")
    for version in VERSIONS
    for p in sorted((ROOT / version).iterdir())
    if (p / "expected.json").is_file()
]
FIXTURES = ROOT / "spark35"


def _saving_version(version_dir: str) -> str:
    """``spark34`` -> ``3.4``: the directory names the version whose saves it holds."""
    return f"{version_dir[5]}.{version_dir[6:]}"


def _scalar(v: Any) -> float:
    """A JSON cell as a number: null is Spark's null (modelport's NULL), "NaN" is NaN."""
    if v is None:
        return NULL
    return math.nan if v == "NaN" else float(v)


def _cell(v: Any) -> Any:
    if not isinstance(v, list):
        return _scalar(v)
    # an LSH output is Spark's array of one-element vectors; modelport sends it as one row of numbers
    return [_scalar(x[0] if isinstance(x, list) and len(x) == 1 else x) for x in v]


def _num(values: list[Any]) -> np.ndarray:
    return np.array([_cell(v) for v in values], dtype=np.float64)


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    arr = np.asarray(value, dtype=np.float64)
    return bool(arr.size) and bool(null_mask(np.ascontiguousarray(arr)).all())


def _is_text(want: list[Any]) -> bool:
    first = next((v for v in want if v is not None), None)
    if isinstance(first, list):
        return not first or isinstance(first[0], str) and first[0] != "NaN"
    return isinstance(first, str) and first != "NaN"


def _assert_column(got: np.ndarray, want: list[Any], what: str) -> None:
    """Spark's column (JSON: null for null, "NaN" for NaN) against modelport's: null exactly where Spark's is."""
    assert len(got) == len(want), f"{what}: {len(got)} rows instead of {len(want)}"
    cells = list(got)
    for i, w in enumerate(want):
        if w is None:
            assert _is_null(cells[i]), f"{what}[{i}]: {cells[i]!r} where Spark has null"
    rows = [i for i, w in enumerate(want) if w is not None]
    if not rows:
        return
    if _is_text(want):
        have = [list(cells[i]) if isinstance(cells[i], list | np.ndarray) else cells[i] for i in rows]
        assert have == [want[i] for i in rows], what
        return
    values = np.array([np.asarray(cells[i], dtype=np.float64) for i in rows])
    for i in rows:  # a NaN Spark computed is not a null
        if want[i] == "NaN":
            assert not _is_null(cells[i]), f"{what}[{i}]: null where Spark has NaN"
    assert_close(values, _num([want[i] for i in rows]), what=what)


def _batch(model: Any, inputs: dict[str, list[Any]]) -> dict[str, Any]:
    batch: dict[str, Any] = {}
    for spec in model.signature.inputs:
        values = inputs[spec.name]
        batch[spec.name] = values if spec.datatype == "BYTES" else _num(values)
    return batch


@pytest.mark.parametrize(("version", "case"), CASES)
def test_spark3x_fixture(version: str, case: str) -> None:
    expected = json.loads((ROOT / version / case / "expected.json").read_text())
    saved_by = _saving_version(version)
    assert expected["spark_version"].startswith(saved_by + ".")
    wanted = list(expected["outputs"])
    model = modelport.load_model(ROOT / version / case / "model", config=ModelConfig(outputs=tuple(wanted)))
    assert model.info["spark_version"] == expected["spark_version"]
    batch = _batch(model, expected["inputs"])
    got = model.predict(batch)
    for name in wanted:
        _assert_column(got[name], expected["outputs"][name], f"{version}/{case} {name}")
    rows = len(next(iter(expected["outputs"].values())))
    for i in range(rows):  # one row at a time (the row path where the pipeline has one) gives the same
        one = model.predict({k: v[i : i + 1] for k, v in batch.items()})
        for name in wanted:
            _assert_column(one[name], expected["outputs"][name][i : i + 1], f"{version}/{case} {name} (row {i})")
    for dropped in expected.get("dropped", []):  # Spark's skip drops the row; predict answers it with null/NaN
        one = model.predict(_batch(model, {k: [v] for k, v in dropped["inputs"].items()}))
        for name in wanted:
            cell = one[name][0]
            assert cell is None or bool(np.isnan(np.asarray(cell, dtype=np.float64)).all()), (name, dropped, cell)
    for error in expected.get("errors", []):  # Spark fails the row: modelport answers 400, never a value
        row = _batch(model, {k: [v] for k, v in error["inputs"].items()})
        with pytest.raises(InvalidInput) as err:
            model.predict(row)
        message = err.value.message
        assert err.value.status == 400, (error, message)
        assert message.startswith("Spark ML stage ") and any(f"'{c}'" in message for c in error["inputs"]), message


def test_every_version_is_small_and_complete() -> None:
    assert {"spark33", "spark34", "spark35"} <= set(VERSIONS)
    for version in VERSIONS:
        cases = {p.name for p in (ROOT / version).iterdir() if (p / "expected.json").is_file()}
        assert {"text_lr", "penguins_lr", "nulls_index_to_string", "stages_vectors", "models_vectors"} <= cases, version
        total = sum(f.stat().st_size for f in (ROOT / version).rglob("*") if f.is_file())
        assert total < 1_000_000, (version, total)
        assert not list((ROOT / version).rglob("*.crc")), version


@pytest.mark.parametrize("version", VERSIONS)
def test_inspect_names_the_saving_version(version: str) -> None:
    from click.testing import CliRunner

    from modelport.cli import main

    case = ROOT / version / "nulls_index_to_string"
    saved = json.loads((case / "expected.json").read_text())["spark_version"]
    result = CliRunner().invoke(main, ["inspect", str(case / "model"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["info"]["spark_version"] == saved
    text = CliRunner().invoke(main, ["inspect", str(case / "model")]).output
    assert f"spark_version: {saved}" in text


@pytest.mark.parametrize(
    ("written", "spark3_rule"),
    [
        ("3.3.2-amzn-0", True),  # EMR
        ("3.4.1.3.4.7190.0-91", True),  # Cloudera: Spark's version, then the distribution's
        ("3.5.0-SNAPSHOT", True),
        ("3.5", True),
        ("4.0.0-preview2", False),
        ("4.1.0", False),
    ],
)
def test_distribution_version_strings_pick_the_rules_of_their_spark(
    tmp_path: Path, written: str, spark3_rule: bool
) -> None:
    """Distributions add suffixes to sparkVersion; the major.minor in front still decides the null rules."""
    import shutil

    path = tmp_path / "m"
    shutil.copytree(ROOT / VERSIONS[0] / "nulls_index_to_string" / "model", path)
    for meta in path.rglob("metadata/part-00000"):
        raw = json.loads(meta.read_text())
        raw["sparkVersion"] = written
        meta.write_text(json.dumps(raw))
    model = modelport.load_model(path)
    assert model.info["spark_version"] == written
    batch = {"idx": np.array([math.nan, NULL, 1.0])}
    if spark3_rule:  # Spark 3: NaN.toInt is index 0, a null index gives a null label
        assert model.predict(batch)["label"].tolist() == ["x", None, "y"]
    else:
        with pytest.raises(InvalidInput) as err:
            model.predict(batch)
        assert err.value.status == 400 and "IndexToString" in err.value.message


def test_load_and_predict_with_pyspark_blocked(tmp_path: Path) -> None:
    """In a process where importing pyspark or py4j raises, a Spark pipeline still loads and predicts."""
    import textwrap

    model_dir = FIXTURES / "penguins_lr" / "model"
    script = textwrap.dedent(
        f"""
        import json, sys
        import modelport
        m = modelport.load_model({str(model_dir)!r})
        row = {{"species": ["Adelie"], "island": ["Dream"], "sex": [None], "bill_length_mm": [39.0],
               "bill_depth_mm": [18.0], "flipper_length_mm": [None], "body_mass_g": [3700.0]}}
        out = m.predict(row)
        print(json.dumps({{"species": out["predicted_species"].tolist(),
                          "loaded": sorted(k for k in sys.modules if k.startswith(("pyspark", "py4j")))}}))
        """
    )
    result = run_without_pyspark(tmp_path, script)
    assert result == {"species": ["Adelie"], "loaded": []}
