"""modelport's own app for another ASGI server's CLI (its public interface only), e.g.

    BENCH_REPO=models python -m uvicorn --factory modelport_app:app --workers 2

Each worker loads the repository itself and has metrics and the access log on, as ``modelport serve``.
"""

from __future__ import annotations

import os
from typing import Any


def app() -> Any:
    from modelport.observability.logs import configure_logging
    from modelport.process.run import ServeConfig, build_app

    configure_logging("info", "json")
    return build_app(ServeConfig(root=os.environ["BENCH_REPO"]))
