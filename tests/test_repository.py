"""The repository: version policy, refresh (add, retry, drain, remove), warm-up, remote roots,
and the V2 repository extension over the in-process app."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import joblib
import pytest

from modelport.core.config import VersionPolicy, parse_versions
from modelport.core.errors import ConfigError, ModelNotReady
from modelport.protocols.rest.app import ModelportApp, ServerOptions
from modelport.serving.repository import Repository
from tests.versioned import add_version, constant_model, remove_version, traffic_toml, v2_body, write_config


def _states(repo: Repository, name: str = "m") -> dict[int, str]:
    return {n: v.state for n, v in repo.entry(name).versions.items()}


def _answer(repo: Repository, name: str = "m") -> float:
    return float(repo.get(name).predict({"input": [[0.5, 1.5]]})["predict"][0])


# -- version policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "loaded"),
    [
        ("", [1, 2, 3]),
        ("[versions]\nall = true\n", [1, 2, 3]),
        ("[versions]\nlatest = 1\n", [3]),
        ("[versions]\nlatest = 2\n", [2, 3]),
        ("[versions]\nspecific = [1, 3, 9]\n", [1, 3]),
    ],
)
def test_version_policy(tmp_path: Path, toml: str, loaded: list[int]) -> None:
    for v in (1, 2, 3):
        add_version(tmp_path / "m", v)
    write_config(tmp_path / "m", toml)
    repo = Repository(str(tmp_path)).load()
    assert sorted(_states(repo)) == loaded and set(_states(repo).values()) == {"AVAILABLE"}
    assert _answer(repo) == loaded[-1]
    repo.close()


BAD_VERSIONS = [
    ({"latest": 0}, "[versions] latest must be an integer >= 1, got 0"),
    ({"latest": "2"}, "[versions] latest must be an integer >= 1, got '2'"),
    ({"all": False}, "[versions] all must be true, got False"),
    ({"specific": []}, "[versions] specific must be a non-empty list of version numbers"),
    ({"specific": ["v1"]}, "[versions]: version 'v1' is not a non-negative integer"),
    (
        {"latest": 1, "all": True},
        "[versions] takes exactly one of latest = N, all = true, specific = [versions]; got all, latest",
    ),
    ({"newest": 1}, "[versions] takes exactly one of latest = N, all = true, specific = [versions]; got newest"),
]


@pytest.mark.parametrize(("table", "message"), BAD_VERSIONS)
def test_bad_version_policy(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_versions(table, "m/modelport.toml")
    assert info.value.message == f"m/modelport.toml: {message}"


def test_policy_select() -> None:
    assert VersionPolicy("latest", latest=5).select([3, 1]) == [1, 3]
    assert VersionPolicy("specific", specific=(2,)).select([1, 2, 3]) == [2]


def test_bad_config_at_startup_raises(tmp_path: Path) -> None:
    add_version(tmp_path / "m", 1)
    write_config(tmp_path / "m", "[traffic]\nweights = {1 = -1}\n")
    with pytest.raises(ConfigError) as info:
        Repository(str(tmp_path)).load()
    assert (
        info.value.message
        == f"{tmp_path}/m/modelport.toml: [traffic] weight of version 1 must be a number >= 0, got -1"
    )


# -- refresh ----------------------------------------------------------------------------------------


def test_refresh_adds_retries_and_removes_versions(tmp_path: Path) -> None:
    model = tmp_path / "m"
    add_version(model, 1)
    repo = Repository(str(tmp_path)).load()
    assert _states(repo) == {1: "AVAILABLE"} and _answer(repo) == 1.0

    add_version(model, 2)
    repo.refresh()
    assert _states(repo) == {1: "AVAILABLE", 2: "AVAILABLE"} and _answer(repo) == 2.0

    add_version(model, 3, broken=True)
    repo.refresh()
    v3 = repo.entry("m").versions[3]
    assert v3.state == "FAILED"
    assert v3.reason.startswith(f"{model}/3/model.joblib: not a readable joblib/pickle file"), v3.reason
    assert _answer(repo) == 2.0  # the old version keeps serving
    with pytest.raises(ModelNotReady) as info:
        repo.get("m", 3)
    assert info.value.message == f"model 'm' version 3 is FAILED: {v3.reason}"
    repo.refresh()  # unchanged files: no retry
    assert repo.entry("m").versions[3] is v3

    joblib.dump(constant_model(3.0), model / "3" / "model.joblib")  # the operator fixes the upload
    repo.refresh()
    assert _states(repo) == {1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE"} and _answer(repo) == 3.0

    closed = repo.entry("m").versions[3].model
    assert closed is not None
    remove_version(model, 3)
    remove_version(model, 1)
    repo.refresh()
    assert _states(repo) == {2: "AVAILABLE"} and _answer(repo) == 2.0
    assert [r["version"] for r in repo.index()] == ["2"]
    repo.close()


def test_traffic_change_is_picked_up_and_a_bad_edit_keeps_the_old_settings(tmp_path: Path) -> None:
    model = tmp_path / "m"
    add_version(model, 1)
    add_version(model, 2)
    write_config(model, traffic_toml({1: 100}))
    repo = Repository(str(tmp_path)).load()
    assert repo.entry("m").route.shares() == {1: 1.0}
    write_config(model, traffic_toml({1: 50, 2: 50}))
    repo.refresh()
    assert repo.entry("m").route.shares() == {1: 0.5, 2: 0.5}
    write_config(model, "[traffic]\nweights = {1 = 'lots'}\n")
    repo.refresh()
    entry = repo.entry("m")
    assert entry.route.shares() == {1: 0.5, 2: 0.5}
    assert (
        entry.config_error == f"{model}/modelport.toml: [traffic] weight of version 1 must be a number >= 0, got 'lots'"
    )
    write_config(model, traffic_toml({2: 1}))
    repo.refresh()
    assert repo.entry("m").route.shares() == {2: 1.0} and repo.entry("m").config_error == ""
    repo.close()


def test_models_appear_and_disappear(tmp_path: Path) -> None:
    add_version(tmp_path / "a", 1)
    repo = Repository(str(tmp_path)).load()
    add_version(tmp_path / "b", 4)
    repo.refresh()
    assert repo.names() == ["a", "b"] and _answer(repo, "b") == 4.0
    remove_version(tmp_path / "a", 1)
    (tmp_path / "a").rmdir()
    repo.refresh()
    assert repo.names() == ["b"]
    repo.close()


def test_unload_waits_for_in_flight_requests(tmp_path: Path) -> None:
    model = tmp_path / "m"
    add_version(model, 1)
    add_version(model, 2)
    repo = Repository(str(tmp_path)).load()
    v1 = repo.entry("m").versions[1]
    assert v1.model is not None
    closed = threading.Event()
    v1.model._close = closed.set
    lease = repo.lease("m", 1)
    assert lease.entry is v1 and lease.model is v1.model and v1.inflight == 1
    remove_version(model, 1)
    worker = threading.Thread(target=repo.refresh)
    worker.start()
    while v1.state != "UNLOADING":
        time.sleep(0.001)
    # Out of the route at once, but not closed while a request still holds it.
    assert _answer(repo) == 2.0 and not closed.is_set() and worker.is_alive()
    with pytest.raises(ModelNotReady):
        repo.lease("m", 1)
    lease.release()
    lease.release()  # a second release is a no-op: the count never goes below the holders
    worker.join()
    assert closed.is_set() and 1 not in repo.entry("m").versions and v1.inflight == 0
    repo.close()


# -- warm-up ----------------------------------------------------------------------------------------


def test_warm_up_with_a_saved_sample(tmp_path: Path) -> None:
    model = tmp_path / "m"
    good = add_version(model, 1)
    (good / "sample.json").write_text(json.dumps(v2_body()))
    bad = add_version(model, 2)
    (bad / "sample.json").write_text(json.dumps({"input": [[1.0, 2.0, 3.0]]}))
    repo = Repository(str(tmp_path)).load()
    v2 = repo.entry("m").versions[2]
    assert _states(repo)[1] == "AVAILABLE" and v2.state == "FAILED"
    assert v2.reason == (
        f"model 'm' version 2: warm-up with {bad}/sample.json failed: "
        "model 'm': input 'input' has shape [1, 3], expected [-1, 2] (-1 = any size)"
    )
    assert _answer(repo) == 1.0
    repo.close()


# -- remote roots -----------------------------------------------------------------------------------


def test_remote_root_is_polled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec

    monkeypatch.setenv("MODELPORT_CACHE", str(tmp_path / "cache"))
    fs = fsspec.filesystem("memory")
    root = f"/modelport-test-{time.time_ns()}"
    local = tmp_path / "src"
    add_version(local / "m", 1)
    fs.put(str(local) + "/", root + "/", recursive=True)
    repo = Repository(f"memory://{root}").load()
    assert _states(repo) == {1: "AVAILABLE"}
    add_version(local / "m", 2)
    fs.put(str(local / "m" / "2") + "/", f"{root}/m/2/", recursive=True)
    repo.refresh()
    assert _states(repo) == {1: "AVAILABLE", 2: "AVAILABLE"} and _answer(repo) == 2.0
    fs.rm(f"{root}/m/1", recursive=True)
    repo.refresh()
    assert _states(repo) == {2: "AVAILABLE"}
    fs.rm(root, recursive=True)
    repo.close()


# -- the V2 repository extension ----------------------------------------------------------------------

ADMIN = {"authorization": "Bearer admin-secret"}


@pytest.fixture
def versioned(tmp_path: Path) -> Path:
    add_version(tmp_path / "m", 1)
    add_version(tmp_path / "m", 2)
    add_version(tmp_path / "other", 1)
    return tmp_path


def _client(repo: Repository, **options: object) -> httpx.AsyncClient:
    app = ModelportApp(repo, ServerOptions(**options))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_index_unload_and_load(versioned: Path) -> None:
    repo = Repository(str(versioned)).load()
    async with _client(repo, admin_token="admin-secret", auth_token="infer-secret") as c:
        server = (await c.get("/v2", headers={"authorization": "Bearer infer-secret"})).json()
        assert "model_repository" in server["extensions"]
        index = await c.post("/v2/repository/index", headers=ADMIN)
        assert index.status_code == 200
        assert index.json() == [
            {"name": "m", "version": "1", "state": "AVAILABLE", "reason": ""},
            {"name": "m", "version": "2", "state": "AVAILABLE", "reason": ""},
            {"name": "other", "version": "1", "state": "AVAILABLE", "reason": ""},
        ]
        r = await c.post("/v2/repository/models/m/unload", headers=ADMIN)
        assert r.status_code == 200 and r.json() == {}
        rows = (await c.post("/v2/repository/index", headers=ADMIN, json={})).json()
        assert rows[0] == {"name": "m", "version": "", "state": "UNAVAILABLE", "reason": "unloaded"}
        ready_rows = (await c.post("/v2/repository/index", headers=ADMIN, json={"ready": True})).json()
        assert [r["name"] for r in ready_rows] == ["other"]
        infer = await c.post("/v2/models/m/infer", json=v2_body(), headers={"authorization": "Bearer infer-secret"})
        assert infer.status_code == 503
        assert infer.json() == {"error": "model 'm' is unloaded; load it with POST /v2/repository/models/m/load"}
        repo.refresh()  # the poller leaves an unloaded model alone
        assert repo.entry("m").unloaded
        r = await c.post("/v2/repository/models/m/load", headers=ADMIN)
        assert r.status_code == 200
        infer = await c.post("/v2/models/m/infer", json=v2_body(), headers={"authorization": "Bearer infer-secret"})
        assert infer.status_code == 200 and infer.json()["model_version"] == "2"
        meta = (await c.get("/v2/models/m", headers={"authorization": "Bearer infer-secret"})).json()
        assert meta["versions"] == ["1", "2"]
        assert meta["version_states"] == [
            {"version": "1", "state": "AVAILABLE", "reason": ""},
            {"version": "2", "state": "AVAILABLE", "reason": ""},
        ]
    repo.close()


async def test_metadata_and_v1_status_report_failed_versions(versioned: Path) -> None:
    add_version(versioned / "m", 3, broken=True)
    repo = Repository(str(versioned)).load()
    reason = repo.entry("m").versions[3].reason
    async with _client(repo) as c:
        meta = (await c.get("/v2/models/m")).json()
        assert meta["version_states"][-1] == {"version": "3", "state": "FAILED", "reason": reason}
        v1 = (await c.get("/v1/models/m")).json()
        assert v1["model_version_status"][0] == {
            "version": "3",
            "state": "END",
            "status": {"error_code": "UNKNOWN", "error_message": reason},
        }
    repo.close()


REPO_ERRORS = [
    ("POST", "/v2/repository/models/nope/load", ADMIN, 404, None),
    ("POST", "/v2/repository/models/nope/unload", ADMIN, 404, "unknown model 'nope'; loaded models: m, other"),
    (
        "POST",
        "/v2/repository/index",
        {"authorization": "Bearer infer-secret"},
        401,
        "wrong admin bearer token: send 'Authorization: Bearer <admin token>'",
    ),
    ("POST", "/v2/repository/index", {}, 401, "missing admin bearer token: send 'Authorization: Bearer <admin token>'"),
    ("GET", "/v2/repository/index", ADMIN, 405, "GET is not allowed on /v2/repository/index; use POST"),
    (
        "POST",
        "/v2/repository/models/m/reload",
        ADMIN,
        404,
        "no route for /v2/repository/models/m/reload; the repository extension has /v2/repository/index "
        "and /v2/repository/models/{model}/load|unload",
    ),
]


@pytest.mark.parametrize(("method", "path", "headers", "status", "message"), REPO_ERRORS)
async def test_repository_extension_errors(
    versioned: Path, method: str, path: str, headers: dict[str, str], status: int, message: str | None
) -> None:
    repo = Repository(str(versioned)).load()
    async with _client(repo, admin_token="admin-secret", auth_token="infer-secret") as c:
        r = await c.request(method, path, headers=headers)
    assert r.status_code == status
    if message is None:
        message = f"no model 'nope' in the repository {versioned}; models on disk: m, other"
    assert r.json() == {"error": message}
    repo.close()


async def test_repository_extension_is_off_without_an_admin_token(versioned: Path) -> None:
    repo = Repository(str(versioned)).load()
    async with _client(repo) as c:
        r = await c.post("/v2/repository/models/m/unload")
    assert r.status_code == 403
    assert r.json() == {
        "error": "the model repository extension is disabled; start the server with --admin-token "
        "(or MODELPORT_ADMIN_TOKEN) to enable it"
    }
    assert _states(repo) == {1: "AVAILABLE", 2: "AVAILABLE"}
    repo.close()


async def test_load_reports_a_bad_traffic_config_and_a_failed_version(versioned: Path) -> None:
    repo = Repository(str(versioned)).load()
    async with _client(repo, admin_token="admin-secret") as c:
        write_config(versioned / "m", "[traffic]\nweights = {1 = 5}\nshadow = 1\n")
        r = await c.post("/v2/repository/models/m/load", headers=ADMIN)
        assert r.status_code == 400
        assert r.json() == {
            "error": f"{versioned}/m/modelport.toml: [traffic] version 1 is the shadow and also has a weight; "
            "a shadow only receives copies, so give it weight 0 or remove it from weights"
        }
        write_config(versioned / "m", "")
        add_version(versioned / "m", 3, broken=True)
        r = await c.post("/v2/repository/models/m/load", headers=ADMIN)
        reason = repo.entry("m").versions[3].reason
        assert r.status_code == 400 and r.json() == {"error": f"failed to load model 'm': version 3: {reason}"}
        infer = await c.post("/v2/models/m/infer", json=v2_body())
        assert infer.status_code == 200 and infer.json()["model_version"] == "2"
    repo.close()


async def test_metadata_shows_a_config_error_kept_from_polling(versioned: Path) -> None:
    repo = Repository(str(versioned)).load()
    write_config(versioned / "m", "[versions]\nlatest = 0\n")
    repo.refresh()
    async with _client(repo) as c:
        meta = (await c.get("/v2/models/m")).json()
    assert meta["config_error"] == f"{versioned}/m/modelport.toml: [versions] latest must be an integer >= 1, got 0"
    assert [s["state"] for s in meta["version_states"]] == ["AVAILABLE", "AVAILABLE"]
    repo.close()


async def test_openapi_follows_the_repository(versioned: Path) -> None:
    repo = Repository(str(versioned)).load()
    async with _client(repo) as c:
        before = (await c.get("/openapi.json")).json()["paths"]
        assert "/v2/repository/models/{model}/load" in before and "/v2/models/late/infer" not in before
        add_version(versioned / "late", 1)
        repo.refresh()
        after = (await c.get("/openapi.json")).json()["paths"]
    assert "/v2/models/late/infer" in after
    repo.close()


def test_a_bad_edit_never_drops_a_renamed_model_and_a_bad_new_model_waits(tmp_path: Path) -> None:
    model = tmp_path / "fraud_dir"
    add_version(model, 1)
    write_config(model, 'name = "fraud"\n')
    repo = Repository(str(tmp_path)).load()
    assert repo.names() == ["fraud"]
    write_config(model, 'name = "fraud"\n[versions]\nnewest = 1\n')
    add_version(tmp_path / "fresh", 1)
    write_config(tmp_path / "fresh", "[traffic]\nshadow = -1\n")
    repo.refresh()
    assert repo.names() == ["fraud"] and _answer(repo, "fraud") == 1.0
    assert repo.entry("fraud").config_error == (
        f"{model}/modelport.toml: [versions] takes exactly one of latest = N, all = true, "
        "specific = [versions]; got newest"
    )
    write_config(tmp_path / "fresh", "")
    repo.refresh()
    assert repo.names() == ["fraud", "fresh"]
    repo.close()
