"""Per-request cost of the observers (metrics, access log, payload log) on the request path.

PYTHONPATH=src python benchmarks/observers.py
"""

from __future__ import annotations

import logging
import tempfile
import time
import timeit

import numpy as np

from modelport.observability.logs import AccessLog, JsonFormatter
from modelport.observability.metrics import Metrics
from modelport.observability.observe import RequestRecord
from modelport.observability.payload_log import PayloadLog


def main() -> None:
    record = RequestRecord(
        "abc",
        "POST",
        "/v2/models/wine/infer",
        "v2",
        "wine",
        1,
        200,
        time.time(),
        0.0004,
        {"input": np.ones((1, 13))},
        {"predict": np.array([1])},
        None,
    )
    n = 200_000
    metrics = Metrics()
    per = timeit.timeit(lambda: metrics.observe(record), number=n) / n
    print(f"Metrics.observe (counter + histogram):      {per * 1e6:6.2f} us")
    per = timeit.timeit(lambda: metrics.observe_inference("wine", 1, 0.0001, 1), number=n) / n
    print(f"observe_inference (histogram x2):           {per * 1e6:6.2f} us")
    per = timeit.timeit(lambda: (metrics.request_started(), metrics.request_finished()), number=n) / n
    print(f"in-flight gauge inc + dec:                  {per * 1e6:6.2f} us")

    logger = logging.getLogger("bench.access")
    logger.propagate = False
    handler = logging.StreamHandler(open("/dev/null", "w"))
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    access = AccessLog(logger)
    m = 50_000
    per = timeit.timeit(lambda: access.observe(record), number=m) / m
    print(f"AccessLog.observe (JSON line to /dev/null): {per * 1e6:6.2f} us")

    with tempfile.TemporaryDirectory() as tmp:
        log = PayloadLog(tmp)
        per = timeit.timeit(lambda: log.observe(record), number=m) / m
        print(f"PayloadLog.observe (enqueue only):          {per * 1e6:6.2f} us")
        start = time.perf_counter()
        log.close()
        print(f"PayloadLog: wrote {log.written} records, flush on close {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
