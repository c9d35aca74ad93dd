"""The long schema-fuzzing run: schemathesis over every route of a live ``modelport serve``.

    python benchmarks/fuzz.py [--examples 300] [--seed 1] [--positive-only]

Builds the fuzz repository (tests/fuzzing.py: scikit-learn, XGBoost, LightGBM and ONNX models,
one with several versions, one with several inputs), serves it with the repository extension on,
and generates up to ``--examples`` requests per operation and generation mode from the server's
own /openapi.json. Prints the status counts, every 5xx (the run fails on any), whether the server
is alive afterwards, and the fraction of generated infer requests that reached the model (a 200):
the measure of how precise the OpenAPI schema is. The suite runs the same with 25 per operation
(tests/server/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402

from tests.fuzzing import ADMIN_TOKEN, build_fuzz_repository, fuzz  # noqa: E402
from tests.serving import run_server  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=300, help="requests per operation and generation mode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--positive-only", action="store_true", help="only requests that follow the schema")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelport-fuzz-") as tmp:
        root = build_fuzz_repository(Path(tmp) / "models")
        with run_server(root, "--admin-token", ADMIN_TOKEN, "--poll-seconds", "0", "--no-access-log") as server:
            started = time.perf_counter()
            tally = fuzz(server.url, seed=args.seed, examples=args.examples, negative=not args.positive_only)
            took = time.perf_counter() - started
            alive = server.process.poll() is None and httpx.get(server.url + "/v2/health/live").status_code == 200
            print(tally.summary())
            print(f"{took:.0f} s, {tally.cases / took:.0f} cases/s; server alive afterwards: {alive}")
            for label, counts in sorted(tally.per_operation.items()):
                print(f"  {label}: {dict(sorted(counts.items()))}")
            for line in tally.server_errors[:20]:
                print("5xx:", line)
            if tally.server_errors or not alive:
                print(server.log()[-4000:])
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
