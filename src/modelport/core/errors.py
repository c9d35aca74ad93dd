"""One error tree for every surface.

ModelportError
  + ClientError (4xx)
  |   + InvalidInput (400)        the request does not fit the model's signature
  |   |   + ModelRejectedInput    the framework refused the values (also a ModelFailed)
  |   + BadRequest (400)          the body is not what the protocol allows
  |   + Unauthorized (401)        missing or wrong bearer token
  |   + Forbidden (403)           e.g. a CORS preflight from an origin not allowed
  |   + NotFound (404)            no such route
  |   |   + UnknownModel (404)
  |   |   + UnknownVersion (404)
  |   + MethodNotAllowed (405)
  |   + PayloadTooLarge (413)
  |   + UnsupportedMediaType (415)
  + ServerError (5xx)
  |   + ModelFailed (500)         the model raised while predicting
  |   + ModelNotReady (503)
  |   + DeadlineExceeded (504)    the request's time budget ran out (--request-timeout, [limits])
  + ModelLoadError                an artifact could not be read (load time, not a request)
  + ConfigError                   modelport.toml or a CLI value is wrong

Each class carries its HTTP status and gRPC code; surfaces never invent their own.
On the wire every error is ``{"error": "<message>"}``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadRequest",
    "ClientError",
    "ConfigError",
    "DeadlineExceeded",
    "Forbidden",
    "InvalidInput",
    "MethodNotAllowed",
    "ModelFailed",
    "ModelLoadError",
    "ModelNotReady",
    "ModelRejectedInput",
    "ModelportError",
    "NotFound",
    "PayloadTooLarge",
    "ServerError",
    "Unauthorized",
    "UnknownModel",
    "UnknownVersion",
    "UnsupportedMediaType",
]


class ModelportError(Exception):
    """Base of every error modelport raises on purpose."""

    status: ClassVar[int] = 500
    grpc_code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.public = public or message
        """What an HTTP client is told of a 5xx: ``message`` may quote the model's internals (it is logged)."""

    def to_dict(self) -> dict[str, str]:
        return {"error": self.message}


class ClientError(ModelportError):
    """The caller made a mistake; retrying the same request will fail again."""

    status = 400
    grpc_code = "INVALID_ARGUMENT"


class InvalidInput(ClientError):
    """The inputs do not fit the model's signature (name, datatype, shape, values)."""


class BadRequest(ClientError):
    """The body is malformed for the protocol (bad JSON, missing keys)."""


class Unauthorized(ClientError):
    """The bearer token is missing or wrong."""

    status = 401
    grpc_code = "UNAUTHENTICATED"


class Forbidden(ClientError):
    """The request is understood but not allowed (an origin outside --cors-origin)."""

    status = 403
    grpc_code = "PERMISSION_DENIED"


class NotFound(ClientError):
    """No route matches the request path."""

    status = 404
    grpc_code = "NOT_FOUND"


class UnknownModel(NotFound):
    """The model name is not in the repository."""


class UnknownVersion(NotFound):
    """The model exists but not in the requested version."""


class MethodNotAllowed(ClientError):
    """The route exists but not for this HTTP method."""

    status = 405
    grpc_code = "UNIMPLEMENTED"


class PayloadTooLarge(ClientError):
    """The body is larger than the server's limit."""

    status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class UnsupportedMediaType(ClientError):
    """The Content-Type is not one the route accepts."""

    status = 415
    grpc_code = "INVALID_ARGUMENT"


class ServerError(ModelportError):
    """Something on the server's side failed; the request may succeed later."""

    status = 500
    grpc_code = "INTERNAL"


class ModelFailed(ServerError):
    """The model raised while predicting; the server keeps serving.

    ``message`` quotes the exception (for the log, the CLI and batch scoring); ``public``, what
    an HTTP client gets with the request id, only names the model.
    """


class ModelRejectedInput(InvalidInput, ModelFailed):
    """The framework refused the request's values (scikit-learn's "Input X contains NaN"): a 400.

    Also a ModelFailed, because the model call did fail: batch scoring skips such rows like
    any row the model cannot score.
    """


class ModelNotReady(ServerError):
    """The model is loading, unloading or failed to load."""

    status = 503
    grpc_code = "UNAVAILABLE"


class DeadlineExceeded(ServerError):
    """The model did not answer within the request's time budget; the server keeps serving."""

    status = 504
    grpc_code = "DEADLINE_EXCEEDED"


class ModelLoadError(ModelportError):
    """An artifact is missing, corrupt or of an unsupported kind."""


class ConfigError(ModelportError):
    """A modelport.toml entry or a command-line value is invalid."""
