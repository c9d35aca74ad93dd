"""Alert rules (promtool unit tests) and the Grafana dashboard (parses, queries only our metrics)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from modelport.observability.metrics import METRIC_NAMES
from tests.obs_helpers import require_tool

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
DASHBOARD = DEPLOY / "grafana" / "modelport.json"

# A series name a query may use: an exported metric, or a histogram's/counter's derived series.
_SUFFIXES = ("", "_bucket", "_sum", "_count")
EXPORTED = {name + suffix for name in METRIC_NAMES for suffix in _SUFFIXES}
_METRIC_REF = re.compile(r"\b(modelport_[a-z_]+)\b")
_ALERT_NAMES = {
    "ModelportHighRequestRate",
    "ModelportHighErrorRatio",
    "ModelportHighP99Latency",
    "ModelportModelNotReady",
    "ModelportPayloadLogBacklog",
    "ModelportStuckCalls",
}


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    tool = require_tool("promtool")
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_alert_rules_are_valid() -> None:
    result = _promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_alert_rule_unit_tests_pass() -> None:
    assert ALERT_TESTS, "no promtool tests under deploy/prometheus/tests"
    result = _promtool("test", "rules", *map(str, ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test() -> None:
    text = "\n".join(p.read_text() for p in ALERT_TESTS)
    tested = set(re.findall(r"alertname:\s*(\w+)", text))
    defined = set(re.findall(r"- alert:\s*(\w+)", ALERTS.read_text()))
    assert defined == _ALERT_NAMES
    assert tested == defined


def test_a_wrong_expectation_makes_promtool_fail(tmp_path: Path) -> None:
    """The unit tests can fail: expecting the quiet model to alert is reported as a failure."""
    (tmp_path / "tests").mkdir()
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    broken = ALERT_TESTS[0].read_text().replace("model: busy}", "model: quiet}", 1)
    assert broken != ALERT_TESTS[0].read_text()
    (tmp_path / "tests" / "alerts_test.yml").write_text(broken)
    result = _promtool("test", "rules", "tests/alerts_test.yml", cwd=tmp_path)
    assert result.returncode == 1
    assert "FAILED" in result.stdout + result.stderr
    assert "ModelportHighRequestRate" in result.stdout + result.stderr


def test_alert_rules_reference_only_exported_metrics() -> None:
    used = set(_METRIC_REF.findall(ALERTS.read_text()))
    assert used
    assert used <= EXPORTED, f"unknown metrics: {sorted(used - EXPORTED)}"


def _targets(dashboard: dict[str, Any]) -> list[str]:
    exprs = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append(target["expr"])
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def test_dashboard_parses_and_queries_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "modelport"
    assert dashboard["uid"]
    exprs = _targets(dashboard)
    assert len(exprs) >= 10
    for expr in exprs:
        used = _METRIC_REF.findall(expr)
        assert used, f"query names no modelport metric: {expr}"
        unknown = set(used) - EXPORTED
        assert not unknown, f"query {expr!r} uses metrics modelport does not export: {sorted(unknown)}"
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    # every exported family is on the dashboard somewhere
    shown = {m for e in exprs for m in _METRIC_REF.findall(e)}
    families = {re.sub(r"_(bucket|sum|count)$", "", m) for m in shown}
    assert families >= set(METRIC_NAMES)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query, with Grafana's variables replaced by plain values."""
    exprs = [
        e.replace("$__rate_interval", "5m").replace("$model", ".*")
        for e in _targets(json.loads(DASHBOARD.read_text()))
        if not e.startswith("label_values(")
    ]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"q:{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout
