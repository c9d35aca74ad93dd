"""AWS Lambda: ``modelport.aws_lambda.handler`` serves the app ``modelport serve`` runs, through Mangum.

Mangum (a maintained ASGI adapter) turns API Gateway REST (payload v1), HTTP API (payload v2)
and function URL events into ASGI requests and the responses back, base64 for binary bodies.
The models load once per container: at import, in Lambda's init phase (``AWS_LAMBDA_FUNCTION_NAME``
is set there), else on the first event. Settings come from the same environment variables as
``modelport serve``: ``MODELPORT_MODELS`` (default ``$LAMBDA_TASK_ROOT/models``),
``MODELPORT_AUTH_TOKEN``, ``MODELPORT_MAX_BODY``, ``MODELPORT_LOG_FORMAT``. One request at a
time reaches a container, so batching is off, and nothing polls the (read-only) models.
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["handler", "make_handler"]

_lock = threading.Lock()
_handler: Any = None


LAMBDA_REQUEST_TIMEOUT = 25.0
"""Under the generated function's 30 s timeout, so a slow model answers 504 with its message instead of
Lambda killing the invocation (``MODELPORT_REQUEST_TIMEOUT`` overrides it)."""


def make_handler(
    root: str,
    *,
    auth_token: str | None = None,
    max_body: int | None = None,
    request_timeout: float | None = LAMBDA_REQUEST_TIMEOUT,
) -> Any:
    """A Lambda handler (``handler(event, context) -> response``) over the models at ``root``."""
    from mangum import Mangum

    from modelport.process.run import ServeConfig, build_app
    from modelport.protocols.rest.app import DEFAULT_MAX_BODY

    config = ServeConfig(
        root=root,
        auth_token=auth_token,
        max_body=max_body or DEFAULT_MAX_BODY,
        batching="off",
        poll_seconds=0,
        metrics=False,  # every container would count on its own; use CloudWatch's invocation metrics
        request_timeout=request_timeout,
    )
    app = build_app(config)
    # lifespan "off": Mangum would run startup and shutdown around every event, closing the models.
    return Mangum(app, lifespan="off", text_mime_types=["application/json", "text/"])  # type: ignore[arg-type]


def _from_env() -> Any:
    from modelport.core.config import parse_size
    from modelport.observability.logs import configure_logging

    configure_logging("info", os.environ.get("MODELPORT_LOG_FORMAT", "json"))
    root = os.environ.get("MODELPORT_MODELS") or os.path.join(os.environ.get("LAMBDA_TASK_ROOT", "."), "models")
    body = os.environ.get("MODELPORT_MAX_BODY")
    timeout = os.environ.get("MODELPORT_REQUEST_TIMEOUT")
    return make_handler(
        root,
        auth_token=os.environ.get("MODELPORT_AUTH_TOKEN") or None,
        max_body=parse_size(body) if body else None,
        request_timeout=(float(timeout) or None) if timeout else LAMBDA_REQUEST_TIMEOUT,
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The function's entry point (``CMD ["modelport.aws_lambda.handler"]``)."""
    global _handler
    if _handler is None:
        with _lock:
            if _handler is None:
                _handler = _from_env()
    result: dict[str, Any] = _handler(event, context)
    return result


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # in Lambda: load during the init phase, not the first request
    _handler = _from_env()
