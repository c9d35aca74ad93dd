"""Version leases are released on every path, and a call that outlives its request keeps its own.

In-process (the ASGI app under httpx) so the test can read each version's in-flight count.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import joblib
import pytest

from modelport.serving.repository import Repository
from tests.helpers import SleepyModel, build_repository
from tests.server.conftest import make_client


def _inflight(repository: Repository, name: str) -> int:
    return sum(v.inflight for v in repository.entry(name).versions.values())


async def test_leases_are_released_after_success_and_every_kind_of_failure(repository: Repository) -> None:
    wine = {"instances": [[13.0, 2.0, 2.4, 19.0, 100.0, 2.5, 2.5, 0.3, 1.6, 5.0, 1.0, 3.0, 1000.0]]}
    async with make_client(repository) as client:
        answers = [
            await client.post("/v1/models/wine:predict", json=wine),  # 200
            await client.post("/v1/models/wine:predict", json={"instances": [[1.0]]}),  # 400: shape
            await client.post("/v1/models/wine:predict", content=b"{not json"),  # 400: JSON
            await client.post(
                "/v2/models/wine/infer",
                json={
                    "inputs": [{"name": "input", "shape": [1, 13], "datatype": "FP64", "data": wine["instances"][0]}],
                    "outputs": [{"name": "nope"}],
                },
            ),  # 400: unknown output
            await client.post(
                "/v2/models/exploding/infer",
                json={"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [0, 0]}]},
            ),  # 500: the model raised
        ]
    assert [a.status_code for a in answers] == [200, 400, 400, 400, 500]
    assert _inflight(repository, "wine") == 0
    assert _inflight(repository, "exploding") == 0


async def test_a_call_past_its_deadline_holds_the_version_until_it_returns(tmp_path: Path) -> None:
    (tmp_path / "sleepy").mkdir()
    joblib.dump(SleepyModel(), tmp_path / "sleepy" / "model.joblib")
    repository = Repository(str(tmp_path)).load()
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 0.0]}]}
    async with make_client(repository, request_timeout=0.2) as client:
        answer = await client.post("/v2/models/sleepy/infer", json=body)
        assert answer.status_code == 504
        assert answer.json()["error"].startswith("model 'sleepy' version 1 did not answer within 0.2 s")
        # The request has gone, but its model call still runs in a thread: the version stays held,
        # so an unload or rollout waits for it instead of closing the model under it.
        assert _inflight(repository, "sleepy") == 1
        for _ in range(100):
            if _inflight(repository, "sleepy") == 0:
                break
            await asyncio.sleep(0.05)
    assert _inflight(repository, "sleepy") == 0
    repository.close()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Repository:
    return Repository(str(build_repository(tmp_path_factory.mktemp("leases")))).load()


async def test_a_request_cancelled_by_its_client_is_not_a_deadline(tmp_path: Path) -> None:
    """Only the DataPlane's own deadline becomes a 504; any other cancellation passes through."""
    from functools import partial

    import orjson

    from modelport.protocols.rest import v2
    from modelport.serving.dataplane import DataPlane
    from modelport.serving.inference import InferCall, Trace

    (tmp_path / "sleepy").mkdir()
    joblib.dump(SleepyModel(), tmp_path / "sleepy" / "model.joblib")
    repository = Repository(str(tmp_path)).load()
    plane = DataPlane(repository, request_timeout=30.0)
    body = orjson.dumps({"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [0.5, 0.0]}]})
    decode = partial(v2.decode_request, "sleepy", None, body, None)
    call = InferCall("v2", "sleepy", None, {}, decode, v2.encode_response, len(body))
    task = asyncio.create_task(plane.infer(call, Trace()))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if _inflight(repository, "sleepy") == 0:
            break
        await asyncio.sleep(0.05)
    assert _inflight(repository, "sleepy") == 0
    repository.close()
