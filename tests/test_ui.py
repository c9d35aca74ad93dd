"""The web pages and the JSON behind them, against a real ``modelport serve`` of the demo models.

The browser tests drive Debian's Chromium (``/usr/bin/chromium``, installed by ``make test``'s
system-deps) through Playwright for Python: they fill a form the way a person does, press
Predict and compare what the page draws with the API's own answer for the same row.
Screenshots go to ``test-artifacts/ui/`` (kept by CI).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest

from modelport.observability.activity import BUCKET_SECONDS, Activity
from modelport.observability.observe import RequestRecord
from tests.serving import RunningServer, run_server
from tests.tolerance import assert_close

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models"
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "ui-test-token"


def _repo(tmp: Path) -> Path:
    """Three of the demo models: tabular (scikit-learn), text and categorical (Spark ML pipelines)."""
    root = tmp / "models"
    root.mkdir()
    for name in ("breast_cancer", "sentiment", "penguins"):
        shutil.copytree(EXAMPLES / name, root / name)
    # A regression whose output declares its unit (modelport.toml), drawn as "value unit".
    shutil.copytree(EXAMPLES / "diabetes", root / "diabetes")
    (root / "diabetes" / "modelport.toml").write_text(
        '[signature]\noutputs = [{name = "predict", datatype = "FP64", shape = [-1], unit = "progression score"}]\n'
    )
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("ui")
    with run_server(_repo(tmp), env={"MODELPORT_AUTH_TOKEN": TOKEN}, log_dir=tmp) as running:
        yield running


def _auth() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


def _models(server: RunningServer) -> dict[str, Any]:
    r = httpx.get(server.url + "/ui/api/models", headers=_auth(), timeout=30)
    assert r.status_code == 200, r.text
    return {m["name"]: m for m in r.json()["models"]}


def _infer(server: RunningServer, name: str, inputs: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{name}/infer", json={"inputs": inputs}, headers=_auth(), timeout=30)


PENGUIN = {
    "island": "Dream",
    "sex": "female",
    "bill_length_mm": 46.5,
    "bill_depth_mm": 17.9,
    "flipper_length_mm": 192.0,
    "body_mass_g": 3500.0,
}


def _penguin_inputs(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": k, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1], "data": [v]}
        for k, v in row.items()
    ]


# -- the JSON the pages are built from --------------------------------------------------------------------
def test_forms_come_from_what_each_model_knows(server: RunningServer) -> None:
    models = _models(server)
    penguins = {i["name"]: i for i in models["penguins"]["inputs"]}
    # The pipeline's StringIndexer knows the islands and sexes: a select, not a free text box.
    assert penguins["island"]["kind"] == "field"
    assert sorted(penguins["island"]["fields"][0]["categories"]) == ["Biscoe", "Dream", "Torgersen"]
    assert sorted(penguins["sex"]["fields"][0]["categories"]) == ["female", "male"]
    for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        example = penguins[name]["fields"][0]["example"]
        assert isinstance(example, float) and example > 0, (name, example)
    # breast_cancer was fitted on a bare array: one field per feature, examples are the scaler's means.
    cancer = models["breast_cancer"]["inputs"][0]
    assert cancer["kind"] == "fields" and len(cancer["fields"]) == 30
    means = joblib.load(EXAMPLES / "breast_cancer" / "model.joblib").steps[0][1].mean_
    assert_close(np.array([f["example"] for f in cancer["fields"]]), means, rtol=1e-3, what="examples vs scaler means")
    # Probability outputs carry their class labels, so the page can label the bars.
    outputs = {o["name"]: o for o in models["penguins"]["outputs"]}
    assert outputs["probability"]["labels"] == ["Adelie", "Gentoo", "Chinstrap"]
    text = models["sentiment"]["inputs"][0]
    assert text["kind"] == "text" and text["datatype"] == "BYTES"
    assert models["diabetes"]["outputs"] == [
        {"name": "predict", "datatype": "FP64", "shape": [-1], "unit": "progression score"}
    ]


def test_examples_file_beside_the_artifact_wins(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(EXAMPLES / "penguins", root / "penguins")
    rows = [dict(PENGUIN), {**PENGUIN, "island": "Biscoe", "body_mass_g": 5000.0}]
    (root / "penguins" / "examples.json").write_text(json.dumps(rows))
    with run_server(root, log_dir=tmp_path) as running:
        model = httpx.get(running.url + "/ui/api/models", timeout=30).json()["models"][0]
    fields = {i["name"]: i["fields"][0] for i in model["inputs"]}
    assert fields["island"]["example"] == "Dream" and fields["body_mass_g"]["example"] == 3500.0
    assert fields["island"]["categories"]  # still a select
    assert model["examples"] == rows


def test_pages_are_open_and_data_needs_the_token(server: RunningServer) -> None:
    for path in ("/", "/ui/ops", "/ui/static/try.js", "/ui/static/ui.css", "/docs"):
        r = httpx.get(server.url + path, timeout=10)
        assert r.status_code == 200, (path, r.status_code)
    for path in ("/ui/api/models", "/ui/api/ops"):
        r = httpx.get(server.url + path, timeout=10)
        assert r.status_code == 401
        assert r.json()["error"] == "missing bearer token: send 'Authorization: Bearer <token>'"
    page = httpx.get(server.url + "/", timeout=10)
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: names never reach a script string


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/ui/static/..%2Fapp.py", 404, "no static file '../app.py'"),
        ("/ui/static/nothing.js", 404, "no static file 'nothing.js'"),
        ("/ui/static/ui.py", 404, "no static file 'ui.py'"),
        ("/ui/elsewhere", 404, "no route for /ui/elsewhere; the web pages are /, /ui/ops and /docs"),
    ],
)
def test_unknown_ui_paths(server: RunningServer, path: str, status: int, message: str) -> None:
    r = httpx.get(server.url + path, headers=_auth(), timeout=10)
    assert r.status_code == status
    assert r.json()["error"] == message


def test_post_to_a_page_is_refused(server: RunningServer) -> None:
    r = httpx.post(server.url + "/ui/api/ops", headers=_auth(), timeout=10)
    assert r.status_code == 405
    assert r.json()["error"] == "POST is not allowed on /ui/api/ops; use GET"


def test_a_hostile_model_name_stays_data(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    name = "x');alert(1);('<b>"
    shutil.copytree(EXAMPLES / "breast_cancer", root / name)
    with run_server(root, log_dir=tmp_path) as running:
        page = httpx.get(running.url + "/", timeout=10).text
        models = httpx.get(running.url + "/ui/api/models", timeout=30).json()["models"]
    assert name not in page and "alert(1)" not in page
    assert models[0]["name"] == name


def test_ops_counts_requests_and_errors(server: RunningServer) -> None:
    def penguins_now() -> dict[str, Any]:
        data = httpx.get(server.url + "/ui/api/ops", headers=_auth(), timeout=10).json()
        return data["series"].get("penguins", {}).get("1", {"total": 0, "client_errors_per_s": [0.0]})

    before = penguins_now()
    for _ in range(5):
        assert _infer(server, "penguins", _penguin_inputs(PENGUIN)).status_code == 200
    inputs = _penguin_inputs(PENGUIN)
    inputs[2]["data"] = ["forty"]
    bad = _infer(server, "penguins", inputs)
    assert bad.status_code == 400
    after = penguins_now()
    assert after["total"] - before["total"] == 6
    assert sum(after["client_errors_per_s"]) * BUCKET_SECONDS - sum(before["client_errors_per_s"]) * BUCKET_SECONDS == (
        pytest.approx(1.0)
    )
    data = httpx.get(server.url + "/ui/api/ops", headers=_auth(), timeout=10).json()
    assert data["models"]["penguins"]["versions"]["1"]["state"] == "AVAILABLE"
    assert data["models"]["penguins"]["versions"]["1"]["traffic"] == 1.0
    assert data["recent"][0]["model"] == "penguins" and data["recent"][0]["status"] == 400
    assert data["recent"][0]["error"] == bad.json()["error"]
    assert "inputs" not in data["recent"][0]  # payload previews only when the payload log is on


# -- the activity ring ------------------------------------------------------------------------------------
def _record(model: str, started: float, duration: float, status: int = 200) -> RequestRecord:
    return RequestRecord("id", "POST", "/", "v2", model, 1, status, started, duration, None, None, None)


def test_activity_percentiles_and_rollover() -> None:
    now = [1_000_000.0]
    activity = Activity(clock=lambda: now[0])
    for i in range(100):
        activity.observe(_record("m", now[0], 0.001 if i < 98 else 0.5))
    activity.observe(_record("m", now[0], 0.002, status=503))
    series = activity.snapshot()["series"]["m"]["1"]
    assert series["total"] == 101
    assert series["requests_per_s"][-1] == pytest.approx(101 / BUCKET_SECONDS)
    assert series["errors_per_s"][-1] == pytest.approx(1 / BUCKET_SECONDS)
    # Log-spaced bins, four per doubling: a percentile is within 10 % of the true latency.
    assert series["p50_ms"][-1] == pytest.approx(1.0, rel=0.1)
    assert series["p99_ms"][-1] == pytest.approx(500, rel=0.1)
    assert np.isnan(series["p50_ms"][0])  # nothing ten minutes ago (null in the JSON)
    now[0] += 30 * BUCKET_SECONDS
    series = activity.snapshot()["series"]["m"]["1"]
    assert series["requests_per_s"][-31] == pytest.approx(101 / BUCKET_SECONDS)
    now[0] += 60 * BUCKET_SECONDS  # everything has left the window
    assert activity.snapshot()["series"]["m"]["1"]["total"] == 0


# -- in a real browser ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page(server: RunningServer) -> Iterator[Any]:
    try:
        from playwright import sync_api as playwright
    except ImportError:  # a missing dev dependency is a broken environment, never a skip
        pytest.fail("playwright is missing: it is in the dev extra (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: `make test` installs Debian's chromium (make system-deps)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        # Chromium logs every 4xx as "Failed to load resource"; the tests cause those on purpose.
        pg.on(
            "console",
            lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None,
        )
        pg.goto(server.url + "/")
        pg.fill("#token", TOKEN)
        pg.click("#token-form button")
        pg.wait_for_selector("section[data-model='penguins'] form")
        pg.errors = errors
        yield pg
        browser.close()


def _card(page: Any, name: str) -> Any:
    return page.locator(f"section[data-model='{name}']")


def _bars(card: Any) -> dict[str, float]:
    labels = card.locator(".bars .label")
    card.locator(".bars").first.wait_for()
    return {
        labels.nth(i).get_attribute("data-label"): float(labels.nth(i).get_attribute("data-value"))
        for i in range(labels.count())
    }


def _field(card: Any, label: str) -> Any:
    return card.get_by_label(label, exact=True)


@pytest.mark.slow
def test_browser_spark_pipeline_form_matches_the_api(page: Any, server: RunningServer) -> None:
    card = _card(page, "penguins")
    _field(card, "island").select_option("Dream")
    _field(card, "sex").select_option("female")
    for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        _field(card, name).fill(str(PENGUIN[name]))
    card.get_by_role("button", name="Predict").click()
    shown = _bars(card)
    api = _infer(server, "penguins", _penguin_inputs(PENGUIN)).json()
    probability = next(o for o in api["outputs"] if o["name"] == "probability")["data"]
    labels = ["Adelie", "Gentoo", "Chinstrap"]
    assert set(shown) == set(labels)
    assert_close(np.array([shown[lab] for lab in labels]), np.array(probability), what="bars vs API")
    # The highest bar is highlighted, and bars are sorted by probability.
    top = card.locator(".bars .label.hit").get_attribute("data-label")
    assert top == labels[int(np.argmax(probability))]
    order = [card.locator(".bars .label").nth(i).get_attribute("data-label") for i in range(3)]
    assert order == [labels[i] for i in np.argsort(probability)[::-1]]
    assert re.search(r"HTTP 200 · [0-9.]+ ms", card.locator(".latency").inner_text())
    card.locator(".snippets summary").click()
    curl = card.locator(".snippets pre").first.inner_text()
    assert curl.startswith("curl -s -X POST ") and "/v2/models/penguins/infer" in curl and '"Dream"' in curl
    page.screenshot(path=str(ARTIFACTS / "penguins-predict.png"), full_page=True)


@pytest.mark.slow
def test_browser_shows_the_servers_error_beside_the_field(page: Any, server: RunningServer) -> None:
    card = _card(page, "penguins")
    _field(card, "island").select_option("Biscoe")
    _field(card, "bill_length_mm").fill("forty")
    card.get_by_role("button", name="Predict").click()
    shown = card.locator("[data-input='bill_length_mm'] .field-error .error")
    shown.wait_for()
    row = {**PENGUIN, "island": "Biscoe", "bill_length_mm": "forty"}
    inputs = _penguin_inputs(row)
    inputs[2]["datatype"] = "FP64"
    api = _infer(server, "penguins", inputs)
    assert api.status_code == 400
    assert shown.inner_text() == api.json()["error"]
    assert "bill_length_mm" in api.json()["error"]
    page.screenshot(path=str(ARTIFACTS / "penguins-error.png"), full_page=True)


@pytest.mark.slow
def test_browser_tabular_example_and_text_model(page: Any, server: RunningServer) -> None:
    cancer = _card(page, "breast_cancer")
    cancer.get_by_role("button", name="Fill example").click()
    values = [float(_field(cancer, f"input[{i}]").input_value()) for i in range(30)]
    assert all(v != 0 for v in values[:4])
    cancer.get_by_role("button", name="Predict").click()
    shown = _bars(cancer)
    api = _infer(
        server, "breast_cancer", [{"name": "input", "datatype": "FP64", "shape": [1, 30], "data": values}]
    ).json()
    proba = next(o for o in api["outputs"] if o["name"] == "predict_proba")["data"]
    assert_close(np.array([shown["0"], shown["1"]]), np.array(proba), what="bars vs API")

    text = _card(page, "sentiment")
    review = "a wonderful, moving film with a brilliant cast"
    _field(text, "text").fill(review)
    text.get_by_role("button", name="Predict").click()
    shown = _bars(text)
    api = _infer(server, "sentiment", [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [review]}]).json()
    out = next(o for o in api["outputs"] if o["name"] == "probability")
    assert_close(np.array(sorted(shown.values())), np.array(sorted(out["data"])), what="bars vs API")
    page.screenshot(path=str(ARTIFACTS / "tabular-and-text.png"), full_page=True)
    assert page.errors == []


@pytest.mark.slow
def test_browser_regression_value_with_its_unit(page: Any, server: RunningServer) -> None:
    card = _card(page, "diabetes")
    card.get_by_role("button", name="Fill example").click()
    values = [float(_field(card, f"input[{i}]").input_value() or "nan") for i in range(10)]
    card.get_by_role("button", name="Predict").click()
    shown = card.locator(".predicted[data-output='predict']")
    shown.wait_for()
    api = _infer(server, "diabetes", [{"name": "input", "datatype": "FP64", "shape": [1, 10], "data": values}])
    assert api.status_code == 200, api.text
    want = next(o for o in api.json()["outputs"] if o["name"] == "predict")["data"][0]
    assert_close(np.array([float(shown.get_attribute("data-value"))]), np.array([want]), what="value vs API")
    assert shown.inner_text().endswith(" progression score")
    meta = httpx.get(server.url + "/v2/models/diabetes", headers=_auth(), timeout=10).json()
    assert meta["outputs"][0]["parameters"] == {"unit": "progression score"}


@pytest.mark.slow
def test_browser_many_rows_as_csv_gives_a_table(page: Any, server: RunningServer) -> None:
    card = _card(page, "penguins")
    card.locator("details.many summary").click()
    header = "island,sex,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g"
    card.locator("textarea[id^='rows-']").fill(
        f"{header}\nDream,female,46.5,17.9,192,3500\nBiscoe,male,50,15,220,5500\n"
    )
    card.get_by_role("button", name="Predict").click()
    rows = card.locator(".result table tbody tr")
    rows.first.wait_for()
    assert rows.count() == 2
    card.locator("textarea[id^='rows-']").fill("")


@pytest.mark.slow
def test_browser_ops_view_counts_requests(page: Any, server: RunningServer) -> None:
    page.goto(server.url + "/ui/ops")
    total = page.locator("section[data-model='penguins'] .total")
    total.wait_for()
    before = int(total.get_attribute("data-total"))
    for _ in range(7):
        assert _infer(server, "penguins", _penguin_inputs(PENGUIN)).status_code == 200
    deadline = time.monotonic() + 15
    while int(total.get_attribute("data-total")) < before + 7:
        assert time.monotonic() < deadline, "the ops view did not refresh"
        page.wait_for_timeout(200)
    assert page.locator("section[data-model='penguins'] svg").count() >= 3
    runtime = httpx.get(server.url + "/ui/api/ops", headers=_auth(), timeout=10).json()["models"]["penguins"]
    shown = " · ".join(dict.fromkeys(runtime["versions"]["1"]["runtime"].values()))
    assert shown and page.locator("section[data-model='penguins'] td.runtime").first.inner_text() == shown
    assert page.locator("#recent tbody tr").count() > 0
    page.screenshot(path=str(ARTIFACTS / "ops.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=str(ARTIFACTS / "ops-phone.png"), full_page=True)
    page.goto(server.url + "/")
    page.wait_for_selector("section[data-model='penguins'] form")
    page.set_viewport_size({"width": 1100, "height": 900})
    assert page.errors == []


# -- what models know, in-process --------------------------------------------------------------------------
def test_hints_from_encoders_and_boosters() -> None:
    import modelport
    from modelport.runtimes.input_hints import model_hints

    frame = modelport.load_model(str(EXAMPLES / "wine_frame"))
    hints = model_hints(frame)
    est = joblib.load(EXAMPLES / "wine_frame" / "model.joblib")
    encoder = next(t for _, t, cols in est.steps[0][1].transformers_ if "hue_band" in list(cols))
    if hasattr(encoder, "steps"):
        encoder = encoder.steps[0][1]
    assert hints["hue_band"][0].categories == list(encoder.categories_[0])
    assert hints["hue_band"][0].example == encoder.categories_[0][0]

    lgbm = modelport.load_model(str(EXAMPLES / "breast_cancer_lgbm"))
    fields = model_hints(lgbm)["input"]
    assert len(fields) == 30
    # A booster knows its split thresholds: the example is their median, per feature.
    import lightgbm

    booster = lightgbm.Booster(model_file=str(EXAMPLES / "breast_cancer_lgbm" / "model.txt"))
    points: dict[int, list[float]] = {}
    stack = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            points.setdefault(node["split_feature"], []).append(node["threshold"])
            stack.extend((node["left_child"], node["right_child"]))
    used = sorted(points)
    assert_close(
        np.array([fields[i].example for i in used]),
        np.array([float(np.median(points[i])) for i in used]),
        rtol=1e-3,  # examples are rounded to four significant digits for people to read
        what="examples vs median split thresholds",
    )
