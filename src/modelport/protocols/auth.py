"""Bearer-token checks shared by the HTTP app and the gRPC port: one rule, one message."""

from __future__ import annotations

import hmac

from modelport.core.errors import Unauthorized

__all__ = ["check_bearer"]


def check_bearer(given: bytes | None, expected: bytes, kind: str = "", where: str = "'Authorization: Bearer") -> None:
    """Raise :class:`Unauthorized` unless ``given`` is ``Bearer <expected>`` (compared in constant time).

    ``kind`` names the token ("admin " for the repository extension); ``where`` says how the
    client sends it (an HTTP header, or gRPC metadata).
    """
    given = given or b""
    scheme, _, token = given.partition(b" ")
    if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), expected):
        reason = "missing" if not given else "wrong"
        raise Unauthorized(f"{reason} {kind}bearer token: send {where} <{kind}token>'")
