"""Schema fuzzing of a live ``modelport serve`` with schemathesis (tests/server/test_fuzz.py, benchmarks/fuzz.py).

Every operation in the server's own ``/openapi.json`` gets requests generated from its schema
(valid ones, and with ``negative`` also ones that break it), seeded so a run is repeatable. The
tally records each answer's status per operation and which infer requests reached the model
(a 200), the measure of how precise the schema is.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ADMIN_TOKEN = "fuzz-admin"


def build_fuzz_repository(root: Path) -> Path:
    """One model per flavor and shape of signature, all fitted on scikit-learn's bundled data.

    Nothing here fails on purpose (no exploding or broken model): every 5xx is a finding.
    """
    import joblib
    import lightgbm as lgb
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from skl2onnx import to_onnx
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = load_wine(return_X_y=True)
    Xd, yd = load_diabetes(return_X_y=True)

    def put(name: str, file: str, version: int | None = None) -> Path:
        folder = root / name / str(version) if version is not None else root / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder / file

    joblib.dump(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y), put("wine", "model.joblib")
    )
    joblib.dump(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), put("cellar", "model.joblib"))
    joblib.dump(LinearRegression().fit(Xd, yd), put("diabetes", "model.joblib", 1))
    joblib.dump(Ridge().fit(Xd, yd), put("diabetes", "model.joblib", 2))
    frame = pd.DataFrame(X[:, :2], columns=["alcohol", "malic_acid"])
    frame["region"] = np.array(["north", "south", "east"])[y]
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["alcohol", "malic_acid"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    joblib.dump(make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(frame, y), put("wine_frame", "model.joblib"))
    xgb.XGBClassifier(n_estimators=5, max_depth=3).fit(X, y).get_booster().save_model(put("wine_xgb", "model.json"))
    lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(Xd, yd).booster_.save_model(put("diabetes_lgb", "model.txt"))
    scaled = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X.astype(np.float32), y)
    onx = to_onnx(scaled, X[:1].astype(np.float32), options={id(scaled.steps[-1][1]): {"zipmap": False}})
    put("wine_onnx", "model.onnx").write_bytes(onx.SerializeToString())
    return root


@dataclass
class Tally:
    """What the fuzzer sent and what came back."""

    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    per_operation: dict[str, collections.Counter[int]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    infer_sent: int = 0
    infer_reached: int = 0

    @property
    def cases(self) -> int:
        return sum(self.statuses.values())

    def reach(self) -> float:
        return self.infer_reached / self.infer_sent if self.infer_sent else 0.0

    def summary(self) -> str:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"{self.cases} cases over {len(self.per_operation)} operations ({codes}); "
            f"infer requests that reached the model: {self.infer_reached}/{self.infer_sent} = {self.reach():.1%}"
        )


def _is_infer(label: str) -> bool:
    return label.startswith("POST") and (label.endswith("/infer") or label.endswith(":predict"))


def fuzz(
    url: str,
    *,
    seed: int,
    examples: int,
    negative: bool = True,
    timeout: float = 30.0,
    on_case: Callable[[str, int], None] | None = None,
) -> Tally:
    """Run schemathesis over every operation of ``url``'s /openapi.json; ``examples`` per operation at most.

    Operations without inputs to vary (health, metrics) get what Hypothesis can make of them,
    often one case. A 2xx unload is undone at once so the models stay served.
    """
    import tempfile

    import schemathesis
    from hypothesis import configuration
    from schemathesis import GenerationMode

    # Hypothesis keeps caches in ./.hypothesis even without an example database: a directory of our own.
    with tempfile.TemporaryDirectory(prefix="modelport-hypothesis-") as home:
        configuration.set_hypothesis_home_dir(home)
        try:
            return _fuzz(url, seed, examples, negative, timeout, on_case, schemathesis, GenerationMode)
        finally:
            configuration.set_hypothesis_home_dir(None)


def _fuzz(
    url: str,
    seed: int,
    examples: int,
    negative: bool,
    timeout: float,
    on_case: Callable[[str, int], None] | None,
    schemathesis: Any,
    GenerationMode: Any,
) -> Tally:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    raw = httpx.get(url + "/openapi.json", timeout=timeout).json()
    schema = schemathesis.openapi.from_dict(raw)
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if negative else [GenerationMode.POSITIVE]
    tally = Tally()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=url, timeout=timeout) as client:
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            counts = tally.per_operation.setdefault(label, collections.Counter())
            for mode in modes:
                send = _sender(client, url, label, counts, tally, admin, on_case)
                run = settings(
                    max_examples=examples,
                    deadline=None,
                    database=None,  # no .hypothesis/ directory left in the tree
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                    print_blob=False,
                )(hypothesis_seed(seed)(given(case=operation.as_strategy(generation_mode=mode))(send)))
                try:
                    run()
                except Exception as exc:  # an operation Hypothesis cannot satisfy is skipped, anything else raised
                    if type(exc).__name__ != "Unsatisfiable":
                        raise
    return tally


def _sender(
    client: httpx.Client,
    url: str,
    label: str,
    counts: collections.Counter[int],
    tally: Tally,
    admin: dict[str, str],
    on_case: Callable[[str, int], None] | None,
) -> Callable[[Any], None]:
    def send(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url=url)
        headers = dict(kwargs.get("headers") or {})
        if "/v2/repository/" in label:
            headers.update(admin)
        response = client.request(
            kwargs["method"],
            kwargs["url"],
            headers=headers,
            params=kwargs.get("params"),
            content=_body(kwargs),
            cookies=kwargs.get("cookies"),
        )
        status = response.status_code
        counts[status] += 1
        tally.statuses[status] += 1
        if _is_infer(label):
            tally.infer_sent += 1
            tally.infer_reached += status == 200
        if status >= 500:
            tally.server_errors.append(
                f"{label} -> {status} {response.text[:300]!r} for {kwargs['method']} {kwargs['url']} "
                f"body {_body(kwargs)[:300]!r}"
            )
        if label.endswith("/unload") and status == 200:
            client.post(kwargs["url"].rsplit("/", 1)[0] + "/load", headers=admin)
        if on_case is not None:
            on_case(label, status)

    return send


def _body(kwargs: dict[str, Any]) -> bytes | None:
    """The request body exactly as schemathesis built it (JSON, or raw bytes for a negative case)."""
    import json

    if "json" in kwargs and kwargs["json"] is not None:
        return json.dumps(kwargs["json"], allow_nan=True).encode()
    data = kwargs.get("data") or kwargs.get("content")
    if isinstance(data, str):
        return data.encode()
    return data if isinstance(data, bytes) else None
