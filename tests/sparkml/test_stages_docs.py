"""docs/sparkml.md's "Supported stages" table names every class the runtime loads, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from modelport.runtimes.sparkml.registry import supported_classes

DOC = Path(__file__).resolve().parents[2] / "docs" / "sparkml.md"


def _table_names() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Supported stages", 1)[1].split("\n#", 1)[0]  # up to the next heading
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| Stage") or line.startswith("|---"):
            continue
        cell = line.split("|")[1]
        for part in re.split(r",\s*", cell.strip()):
            m = re.fullmatch(r"DecisionTree/RandomForest/GBT (\w+)", part)
            if m:
                names.update(f"{kind}{m.group(1)}" for kind in ("DecisionTree", "RandomForest", "GBT"))
            else:
                names.add(part)
    return names


def test_supported_stages_table_matches_the_registry() -> None:
    runtime = {c.rsplit(".", 1)[-1] for c in supported_classes()}
    documented = _table_names()
    assert runtime - documented == set(), f"supported but not in docs/sparkml.md: {sorted(runtime - documented)}"
    assert documented - runtime == set(), f"documented but not supported: {sorted(documented - runtime)}"
