"""schemathesis over every route of a live ``modelport serve``: no input a client can send is a 5xx.

Seeded and bounded: FUZZ_EXAMPLES per operation and generation mode (valid requests, then ones
that break the schema), about 2,400 cases over the fuzz repository's ~90 operations. The longer
run is ``python benchmarks/fuzz.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fuzzing import ADMIN_TOKEN, build_fuzz_repository, fuzz
from tests.serving import RunningServer, run_server

pytestmark = pytest.mark.slow

FUZZ_SEED = 20261203
FUZZ_EXAMPLES = 25
MIN_CASES = 2000


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = build_fuzz_repository(tmp_path_factory.mktemp("fuzz-repo"))
    with run_server(root, "--admin-token", ADMIN_TOKEN, "--poll-seconds", "0", "--no-access-log") as server:
        yield server


def test_no_generated_request_is_a_server_error(fuzz_server: RunningServer) -> None:
    tally = fuzz(fuzz_server.url, seed=FUZZ_SEED, examples=FUZZ_EXAMPLES)
    print(tally.summary())
    assert tally.server_errors == [], "\n".join(tally.server_errors[:10])
    assert tally.cases >= MIN_CASES, tally.summary()
    routes = {label.split(" ", 1)[1] for label in tally.per_operation}
    for expected in (
        "/v2/models/wine/infer",
        "/v1/models/wine:predict",
        "/v2/models/diabetes/versions/{version}/ready",
        "/v2/repository/models/{model}/unload",
        "/v2/repository/index",
        "/v2/health/ready",
        "/metrics",
        "/v2",
    ):
        assert expected in routes, f"{expected} was not fuzzed"
    # The schema is precise enough that most valid requests reach the model (benchmarks/fuzz.py reports it).
    assert tally.reach() > 0.3, tally.summary()
    # Alive and still answering correctly afterwards.
    assert fuzz_server.process.poll() is None
    assert httpx.get(fuzz_server.url + "/v2/health/ready", timeout=10).status_code == 200
    row = [13.2, 1.8, 2.1, 15.0, 100.0, 2.4, 2.6, 0.3, 1.6, 4.7, 1.0, 3.2, 1050.0]
    r = httpx.post(fuzz_server.url + "/v1/models/wine:predict", json={"instances": [row]}, timeout=10)
    assert r.status_code == 200 and r.json()["predictions"][0]["predict"] in (0, 1, 2)
