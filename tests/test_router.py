"""Traffic policy: weighted splits, stickiness, shadow copies; unit level and through the app."""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path

import httpx
import pytest

from modelport.core.config import TrafficConfig, parse_traffic
from modelport.core.errors import ConfigError
from modelport.protocols.rest.app import ModelportApp, ServerOptions
from modelport.serving.repository import Repository
from modelport.serving.router import Route, sticky_point
from tests.versioned import add_version, traffic_toml, v2_body, write_config


def _within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """``count`` successes of ``n`` draws is within ``sigmas`` standard deviations of ``n * p``."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def _counts(route: Route[str], draws: int, headers: list[dict[bytes, bytes]] | None = None) -> dict[int, int]:
    counts: dict[int, int] = {}
    for i in range(draws):
        chosen = route.choose(headers[i] if headers else None)
        assert chosen is not None
        counts[chosen[0]] = counts.get(chosen[0], 0) + 1
    return counts


AVAILABLE = {1: "one", 2: "two", 3: "three"}


def test_canary_split_is_95_5() -> None:
    route = Route.build(AVAILABLE, TrafficConfig(weights=((1, 95), (2, 5))), rng=random.Random(7).random)
    counts = _counts(route, 20_000)
    assert set(counts) == {1, 2}
    assert _within(counts[2], 20_000, 0.05)
    assert route.shares() == pytest.approx({1: 0.95, 2: 0.05})
    assert route.primary == (1, "one")


def test_ab_split_is_50_50_and_weights_need_not_sum_to_100() -> None:
    route = Route.build(AVAILABLE, TrafficConfig(weights=((1, 1), (3, 1))))
    counts = _counts(route, 10_000)
    assert set(counts) == {1, 3} and _within(counts[3], 10_000, 0.5)


def test_unavailable_weighted_versions_are_dropped_and_the_rest_renormalised() -> None:
    route = Route.build({1: "one", 3: "three"}, TrafficConfig(weights=((1, 30), (2, 60), (3, 10))))
    assert route.shares() == pytest.approx({1: 0.75, 3: 0.25})
    nothing_weighted_is_up = Route.build({1: "one"}, TrafficConfig(weights=((2, 100),)))
    assert _counts(nothing_weighted_is_up, 100) == {1: 100}


def test_without_traffic_the_newest_version_answers_and_never_the_shadow() -> None:
    assert _counts(Route.build(AVAILABLE, None), 50) == {3: 50}
    route = Route.build(AVAILABLE, TrafficConfig(shadow=3))
    assert _counts(route, 50) == {2: 50} and route.shadow == (3, "three")
    assert Route.build({}, None).choose() is None and Route.build({}, None).empty


def test_sticky_key_always_gets_the_same_version() -> None:
    traffic = TrafficConfig(weights=((1, 50), (2, 50)), sticky_header="x-user")
    route = Route.build(AVAILABLE, traffic)
    other_process = Route.build(dict(AVAILABLE), traffic, rng=random.Random(99).random)
    keys = [f"user-{i}".encode() for i in range(2_000)]
    first = {k: route.choose({b"x-user": k}) for k in keys}
    for _ in range(3):
        for k in keys:
            assert route.choose({b"x-user": k}) == first[k]
            assert other_process.choose({b"x-user": k}) == first[k]
    on_two = sum(1 for v in first.values() if v is not None and v[0] == 2)
    assert _within(on_two, len(keys), 0.5)
    # Without the header the choice is random again.
    assert set(_counts(route, 2_000)) == {1, 2}
    assert 0.0 <= sticky_point(b"") < 1.0


BAD_TRAFFIC = [
    ({"weights": {"1": -5}}, "[traffic] weight of version 1 must be a number >= 0, got -5"),
    ({"weights": {"1": 0, "2": 0}}, "[traffic] weights are all 0; give at least one version a positive weight"),
    ({"weights": {"one": 5}}, "[traffic] weights: version 'one' is not a non-negative integer"),
    ({"weights": [95, 5]}, "[traffic] weights must be a table of version = weight, e.g. {1 = 95, 2 = 5}"),
    ({"weights": {"1": "95"}}, "[traffic] weight of version 1 must be a number >= 0, got '95'"),
    ({"split": {"1": 5}}, "[traffic] unknown key(s) split; allowed: weights, sticky_header, shadow"),
    ({"sticky_header": 5}, "[traffic] sticky_header must be a header name such as 'x-user-id'"),
    ({"shadow": "x"}, "[traffic] shadow: version 'x' is not a non-negative integer"),
    (
        {"weights": {"1": 90, "2": 10}, "shadow": 2},
        "[traffic] version 2 is the shadow and also has a weight; a shadow only receives copies, "
        "so give it weight 0 or remove it from weights",
    ),
]


@pytest.mark.parametrize(("table", "message"), BAD_TRAFFIC)
def test_bad_traffic_config(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_traffic(table, "m/modelport.toml")
    assert info.value.message == f"m/modelport.toml: {message}"
    assert info.value.status == 500


def test_traffic_config_normalises() -> None:
    cfg = parse_traffic({"weights": {"2": 5, "1": 95}, "sticky_header": " X-User ", "shadow": 3}, "here")
    assert cfg == TrafficConfig(weights=((1, 95.0), (2, 5.0)), sticky_header="x-user", shadow=3)


# -- through the app --------------------------------------------------------------------------------


def _repo(root: Path, toml: str, versions: tuple[int, ...] = (1, 2)) -> Repository:
    model = root / "m"
    for v in versions:
        add_version(model, v)
    write_config(model, toml)
    return Repository(str(root)).load()


async def _ask(client: httpx.AsyncClient, n: int, headers: dict[str, str] | None = None) -> list[str]:
    answers = []
    for _ in range(n):
        r = await client.post("/v2/models/m/infer", json=v2_body(), headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert r.headers["x-model-version"] == body["model_version"]
        assert body["outputs"][0]["data"] == [float(body["model_version"])]  # the named version really answered
        answers.append(body["model_version"])
    return answers


async def test_split_and_stickiness_over_http(tmp_path: Path) -> None:
    repo = _repo(tmp_path, traffic_toml({1: 50, 2: 50}, sticky="x-user"))
    app = ModelportApp(repo, ServerOptions())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answers = await _ask(client, 1_000)
        assert _within(answers.count("2"), 1_000, 0.5)
        for user in ("alice", "bob", "carol", "dave"):
            assert len(set(await _ask(client, 20, {"x-user": user}))) == 1
        v1 = await client.post("/v1/models/m:predict", json={"instances": [[0.5, 1.5]]}, headers={"x-user": "alice"})
        sticky_v2 = (await _ask(client, 1, {"x-user": "alice"}))[0]
        assert v1.headers["x-model-version"] == sticky_v2 and v1.json() == {"predictions": [float(sticky_v2)]}
        meta = (await client.get("/v2/models/m")).json()
        assert meta["traffic"] == {"1": 0.5, "2": 0.5}
        pinned = await client.post("/v2/models/m/versions/1/infer", json=v2_body(), headers={"x-user": "zed"})
        assert pinned.json()["model_version"] == "1"
    assert all(v.inflight == 0 for v in repo.entry("m").versions.values())
    repo.close()


async def test_shadow_gets_a_copy_and_is_measured(tmp_path: Path) -> None:
    repo = _repo(tmp_path, traffic_toml({1: 100}, shadow=2))
    app = ModelportApp(repo, ServerOptions())
    seen: list[tuple[str, int, float, str | None, bool | None]] = []
    app.plane.shadow_observers.append(lambda *args: seen.append(args))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert set(await _ask(client, 30)) == {"1"}
        for _ in range(200):
            if len(seen) == 30:
                break
            await asyncio.sleep(0.01)
        meta = (await client.get("/v2/models/m")).json()
    stats = app.plane.shadow_stats[("m", 2)]
    assert stats.calls == 30 and stats.errors == 0 and stats.dropped == 0
    assert stats.mismatches == 30  # version 2 answers 2.0 where version 1 answered 1.0
    assert len(seen) == 30 and all(s[:2] == ("m", 2) and s[3] is None and s[4] is False for s in seen)
    assert meta["shadow_version"] == "2" and meta["traffic"] == {"1": 1.0}
    assert {k: meta["shadow_stats"][k] for k in ("calls", "errors", "dropped", "mismatches")} == {
        "calls": 30,
        "errors": 0,
        "dropped": 0,
        "mismatches": 30,
    }
    assert all(v.inflight == 0 for v in repo.entry("m").versions.values())
    repo.close()
