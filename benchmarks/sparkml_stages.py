"""Per-stage cost of one row through the demo pipelines (no Spark needed).

    PYTHONPATH=src python benchmarks/sparkml_stages.py

Best of 30 repeats of 200 calls each, so background load disturbs it less than a median would.
"""

from __future__ import annotations

import timeit
from pathlib import Path
from typing import Any

import modelport
from modelport.runtimes.sparkml.stage import Frame

MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"
ROWS: dict[str, dict[str, list[Any]]] = {
    "sentiment": {"text": ["a really fun movie with a great plot, the best of the year"]},
    "penguins": {
        "island": ["Dream"],
        "sex": [None],
        "bill_length_mm": [39.0],
        "bill_depth_mm": [18.0],
        "flipper_length_mm": [None],
        "body_mass_g": [3700.0],
    },
}


def best(fn: Any) -> float:
    for _ in range(200):
        fn()
    return min(timeit.repeat(fn, number=200, repeat=30)) / 200 * 1e6


def main() -> None:
    for name, row in ROWS.items():
        model = modelport.load_model(MODELS / name)
        pipeline = getattr(model.predictor, "inner", model.predictor)
        batch = model.plan.coerce_batch(row)
        print(
            f"{name}: Model.predict {best(lambda m=model, r=row: m.predict(r)):.1f} us "
            f"(input coercion {best(lambda m=model, r=row: m.plan.coerce_batch(r)):.1f} us)"
        )
        frame = Frame(dict(batch), 1)
        for stage in pipeline.stages:
            cols = dict(frame.columns)
            cost = best(lambda s=stage, c=cols: s.transform(Frame(dict(c), 1)))
            stage.transform(frame)
            print(f"  {stage.meta.short_class:<28} {cost:7.1f} us")


if __name__ == "__main__":
    main()
