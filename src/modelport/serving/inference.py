"""The protocol-neutral request and response: what every codec decodes to and encodes from.

V1 REST, V2 REST (JSON and binary) and V2 gRPC differ only in their wire formats. Each
turns its wire request into an :class:`InferRequest` and an :class:`InferResponse` back into
its wire answer; everything in between (version lease, batching, threads, deadlines, shadow,
observers) is :class:`~modelport.serving.dataplane.DataPlane`'s, once, for all of them.

Decoding needs the model (its ``InputPlan`` coerces wire values), and the model is known only
once the DataPlane has leased a version, so a codec hands the DataPlane an :class:`InferCall`:
the model name, version and headers it read from the envelope, plus a ``decode`` and an
``encode`` function. The DataPlane calls them in order. A big body is decoded in a helper
process (parsing 32 MiB of JSON holds the GIL for seconds, so a thread would still stall the
event loop): ``decode`` must then be picklable (a ``functools.partial`` of a module-level
function over bytes or a protobuf message) and reads only a :class:`Decodable`.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from modelport.core.signature import Batch, InputPlan

if TYPE_CHECKING:
    from modelport.core.model import Model

__all__ = [
    "NO_HEADERS",
    "NO_PARAMETERS",
    "InferCall",
    "InferRequest",
    "InferResponse",
    "Parameters",
    "Protocol",
    "Trace",
]

Protocol = Literal["v1", "v2", "grpc", "other"]
"""The protocol label of a request in metrics, logs and the payload log."""

Parameters = Mapping[str, object]
"""A request's or response's ``parameters`` (V2): JSON scalars, or gRPC's bool/int64/string values."""

NO_PARAMETERS: Parameters = {}  # shared and never written: read-only by type
NO_HEADERS: Mapping[bytes, bytes] = {}

Out = TypeVar("Out")


class Decodable(typing.Protocol):
    """What a decoder may read of a model: its name (for messages) and its input plan.

    A :class:`~modelport.core.model.Model` is one; so is the stand-in a decoding process builds.
    """

    @property
    def name(self) -> str: ...

    @property
    def plan(self) -> InputPlan: ...


@dataclass(slots=True)
class InferRequest:
    """One inference request, whatever protocol carried it."""

    model_name: str
    model_version: str | None
    inputs: Batch
    outputs: Sequence[str] | None = None
    """The outputs asked for, in order; ``None`` means every output the model serves."""
    parameters: Parameters = field(default_factory=dict)
    id: str | None = None
    headers: Mapping[bytes, bytes] = field(default_factory=dict)
    """HTTP headers, or gRPC metadata as lower-case byte pairs (a sticky [traffic] split reads them)."""
    codec: Mapping[str, object] = field(default_factory=dict)
    """What only the codec that decoded the request reads back when it encodes the answer
    (V1's row format, V2's binary output choices and the id as the client sent it)."""


@dataclass(slots=True)
class InferResponse:
    """The answer: which version answered, and its outputs (only the ones asked for)."""

    model: Model
    outputs: Batch
    id: str | None = None
    parameters: Parameters = field(default_factory=dict)


@dataclass(slots=True)
class InferCall(Generic[Out]):
    """What a codec gives the DataPlane: the envelope it read and how to decode and encode the rest.

    ``decode`` turns the body into an :class:`InferRequest` with the leased version's input plan
    (the DataPlane sets its ``headers``); ``encode`` turns the request and the :class:`InferResponse`
    into the codec's answer. ``size`` (body bytes) tells the DataPlane when the body is big.
    ``deadline`` is the client's own (a gRPC deadline), in ``time.monotonic()`` seconds; the
    server's request timeout applies as well.
    """

    protocol: Protocol
    model_name: str
    model_version: str | None
    headers: Mapping[bytes, bytes]
    decode: Callable[[Decodable], InferRequest]
    encode: Callable[[InferRequest, InferResponse], Out]
    size: int = 0
    deadline: float | None = None
    signature_name: str | None = None
    """TF Serving's ``signature_name`` (V1 body, V2/gRPC parameter): another signature of the leased version."""


@dataclass(slots=True)
class Trace:
    """What observers learn about one request; the DataPlane fills it in as the request goes."""

    protocol: Protocol = "other"
    model_name: str | None = None
    """The model the request named, once the repository knows that name (never an unknown one)."""
    model: Model | None = None
    """The version that was leased."""
    inputs: Batch | None = None
    outputs: Batch | None = None
