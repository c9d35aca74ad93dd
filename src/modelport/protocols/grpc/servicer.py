"""Open Inference Protocol V2 over gRPC (``inference.GRPCInferenceService``): a codec for the DataPlane.

Runs on the same event loop as the REST app and goes through the same
:class:`~modelport.serving.dataplane.DataPlane`, so leases, batching, deadlines, shadow, metrics and
the payload log behave alike on both. Tensors arrive either typed in ``contents`` or as
``raw_input_contents`` (little-endian bytes, the binary layout); answers use the form the
request used.

Security matches HTTP: with an auth token every method but ``ServerLive`` and
``ServerReady`` (the health probes, open on HTTP too) needs metadata
``authorization: Bearer <token>``; with a certificate the port speaks TLS only.
A client's gRPC deadline is honoured along with the server's request timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from modelport.core.errors import BadRequest, ModelportError, Unauthorized
from modelport.core.model import Model
from modelport.core.nulls import null_positions, text_for_bytes
from modelport.core.signature import Batch, TensorSpec
from modelport.protocols.auth import check_bearer
from modelport.protocols.grpc.proto import grpc_predict_v2_pb2 as pb
from modelport.protocols.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from modelport.protocols.rest.binary import encode_tensor, rectangular, tensor_from_bytes
from modelport.protocols.sparse import INDICES_SUFFIX, check_sparse, sparse_flag, sparse_tensors
from modelport.serving.dataplane import DataPlane
from modelport.serving.inference import (
    NO_PARAMETERS,
    Decodable,
    InferCall,
    InferRequest,
    InferResponse,
    Parameters,
    Trace,
)

log = logging.getLogger("modelport.grpc")

__all__ = ["GrpcOptions", "start_grpc"]

SERVICE = "/inference.GRPCInferenceService/"
INFER_PATH = SERVICE + "ModelInfer"
# The health probes stay open without a token, as /v2/health/live and /v2/health/ready do over HTTP.
OPEN_METHODS = frozenset({SERVICE + "ServerLive", SERVICE + "ServerReady"})

_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

_CODES = {code.name: code for code in grpc.StatusCode}


@dataclass
class GrpcOptions:
    host: str
    port: int
    max_message: int
    auth_token: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


def grpc_code(exc: ModelportError) -> grpc.StatusCode:
    """The gRPC status an error class carries (errors.py), e.g. INVALID_ARGUMENT for a 400."""
    return _CODES.get(exc.grpc_code, grpc.StatusCode.INTERNAL)


def _parameters(params: Any) -> Parameters:
    if not params:
        return NO_PARAMETERS
    out: dict[str, object] = {}
    for key, value in params.items():
        choice = value.WhichOneof("parameter_choice")
        if choice is not None:
            out[key] = getattr(value, choice)
    return out


def decode_request(request: pb.ModelInferRequest, model: Decodable) -> InferRequest:
    """A ModelInferRequest to an InferRequest (picklable with the message, for big ones)."""
    return InferRequest(
        request.model_name,
        request.model_version or None,
        decode_tensors(model, request),
        [o.name for o in request.outputs] or None,
        _parameters(request.parameters),
        request.id or None,
        codec={"raw": bool(request.raw_input_contents), "id": request.id, "sparse": _sparse_wanted(model, request)},
    )


def _sparse_wanted(model: Decodable, request: pb.ModelInferRequest) -> frozenset[str]:
    """Outputs whose ``sparse`` parameter is true (a bool_param; protocols/sparse.py); 400 for one not a vector."""
    names = []
    for o in request.outputs:
        if "sparse" in o.parameters:
            param = o.parameters["sparse"]
            value = getattr(param, param.WhichOneof("parameter_choice") or "bool_param")
            if sparse_flag(model.name, o.name, value):
                names.append(o.name)
    return check_sparse(model.name, model.plan.signature, names)


def _encode(request: InferRequest, answer: InferResponse) -> pb.ModelInferResponse:
    sparse: frozenset[str] = request.codec.get("sparse", frozenset())  # type: ignore[assignment]
    return encode_response(
        answer.model, answer.outputs, bool(request.codec.get("raw")), str(request.codec["id"]), sparse
    )


def _text_or_bytes(value: bytes) -> str | bytes:
    """UTF-8 text as str, anything else kept as the bytes it is (a binary string must arrive whole)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def decode_tensors(model: Decodable, request: pb.ModelInferRequest) -> Batch:
    """The request's tensors as a checked Batch (the same InputPlan checks and messages as REST)."""
    plan = model.plan
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(
            f"model '{model.name}': {len(request.inputs)} inputs but {len(raw)} raw_input_contents entries"
        )
    batch: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        shape = list(tensor.shape)
        if raw:
            data: Any = tensor_from_bytes(memoryview(raw[i]), tensor.name, tensor.datatype, shape)
        else:
            field = _FIELDS.get(tensor.datatype)
            if field is None:
                raise BadRequest(
                    f"model '{model.name}': input '{tensor.name}' datatype '{tensor.datatype}' cannot travel in "
                    f"'contents'; use raw_input_contents or one of {', '.join(_FIELDS)}"
                )
            values = getattr(tensor.contents, field)
            data = [_text_or_bytes(v) for v in values] if field == "bytes_contents" else np.asarray(values)
        if tensor.name in batch:
            raise BadRequest(f"model '{model.name}': input '{tensor.name}' appears twice")
        batch[tensor.name] = plan.coerce_shaped(tensor.name, data, tensor.datatype, shape)
    return plan.check(batch)


def encode_response(
    model: Model, result: Batch, use_raw: bool, request_id: str, sparse: frozenset[str] = frozenset()
) -> pb.ModelInferResponse:
    """Outputs as raw_output_contents when the request sent raw inputs, else typed contents."""
    datatypes = model.output_datatypes
    response = pb.ModelInferResponse(model_name=model.name, model_version=model.version_text, id=request_id)
    for name, arr in result.items():
        datatype = datatypes.get(name, "FP64")
        if name in sparse:
            _add_sparse(response, name, datatype, arr, use_raw)
            continue
        arr, lengths = rectangular(arr)
        out = response.outputs.add(name=name, datatype=datatype, shape=list(arr.shape))
        if lengths is not None:  # each row's real length (a parameter holds no list: JSON text, as documented)
            out.parameters["lengths"].string_param = json.dumps(lengths)
        nulls = null_positions(arr)
        if nulls is not None:  # contents hold no null: the flat positions of Spark's nulls, as JSON text
            out.parameters["nulls"].string_param = json.dumps(nulls)
        _add_contents(response, out, arr, datatype, use_raw)
    return response


def _add_sparse(response: pb.ModelInferResponse, name: str, datatype: str, arr: np.ndarray, use_raw: bool) -> None:
    """A vector output in sparse form: values and the ``<name>.indices`` companion (protocols/sparse.py)."""
    values, indices, lengths, size = sparse_tensors(arr)
    out = response.outputs.add(name=name, datatype=datatype, shape=list(values.shape))
    out.parameters["sparse"].bool_param = True
    out.parameters["size"].int64_param = size
    out.parameters["lengths"].string_param = json.dumps(lengths)
    _add_contents(response, out, values, datatype, use_raw)
    companion = response.outputs.add(name=name + INDICES_SUFFIX, datatype="INT64", shape=list(indices.shape))
    companion.parameters["lengths"].string_param = json.dumps(lengths)
    _add_contents(response, companion, indices, "INT64", use_raw)


def _add_contents(response: pb.ModelInferResponse, out: Any, arr: np.ndarray, datatype: str, use_raw: bool) -> None:
    if use_raw:
        response.raw_output_contents.append(encode_tensor(arr, datatype))
    elif datatype == "BYTES":
        out.contents.bytes_contents.extend(text_for_bytes(v) for v in arr.reshape(-1).tolist())
    elif datatype == "FP16":
        response.raw_output_contents.append(encode_tensor(arr, datatype))
    else:
        getattr(out.contents, _FIELDS[datatype]).extend(arr.reshape(-1).tolist())


def _tensors(specs: tuple[TensorSpec, ...]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    return [pb.ModelMetadataResponse.TensorMetadata(name=s.name, datatype=s.datatype, shape=s.shape) for s in specs]


class _Servicer(pb_grpc.GRPCInferenceServiceServicer):
    """Translates each RPC to the DataPlane and back; no orchestration of its own."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.plane.ready())

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        meta = self.plane.server_metadata()
        return pb.ServerMetadataResponse(name=meta["name"], version=meta["version"], extensions=meta["extensions"])

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        try:
            ready = self.plane.model_ready(request.name, request.version or None)
        except ModelportError as exc:
            await context.abort(grpc_code(exc), exc.message)
        return pb.ModelReadyResponse(ready=ready)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        try:
            meta = self.plane.model_metadata(request.name, request.version or None)
        except ModelportError as exc:
            await context.abort(grpc_code(exc), exc.message)
        return pb.ModelMetadataResponse(
            name=meta.name,
            versions=meta.versions,
            platform=meta.platform,
            inputs=_tensors(meta.inputs),
            outputs=_tensors(meta.outputs),
        )

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        started = time.perf_counter()
        plane = self.plane
        # Metadata keys play the part of HTTP headers (a sticky [traffic] split reads them).
        headers = {k.encode(): v.encode() for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        left = context.time_remaining()
        call = InferCall(
            "grpc",
            request.model_name,
            request.model_version or None,
            headers,
            partial(decode_request, request),
            _encode,
            request.ByteSize(),
            None if left is None else time.monotonic() + left,
        )
        if "signature_name" in request.parameters:  # TF Serving's signature choice, as a V2 parameter
            call.signature_name = request.parameters["signature_name"].string_param
        trace = Trace()
        status, error, code = 200, None, grpc.StatusCode.OK
        public: str | None = None  # what the client is told of a server failure
        response = None
        try:
            response = await plane.infer(call, trace)
        except ModelportError as exc:
            status, error, code = exc.status, exc.message, grpc_code(exc)
            if exc.status == 500:
                # As over HTTP: the client learns what failed, the log gets how, under the request id.
                log.error("gRPC request %s: %s", request.id or "-", exc.message, exc_info=exc.__cause__ or exc)
                public = f"{exc.public} (request id {request.id or '-'}; the server log has the details)"
        except asyncio.CancelledError:  # gRPC cancels the call at the client's deadline or when it hangs up
            if call.deadline is not None and time.monotonic() >= call.deadline:
                status, error = 504, f"the client's deadline passed before model '{request.model_name}' answered"
            else:
                status, error = 499, "the client cancelled the call"
            if plane.observers:
                plane.observe(trace, "POST", INFER_PATH, status, started, request.id, error)
            raise
        except Exception as exc:  # the server keeps serving
            status, error, code = 500, f"internal server error: {type(exc).__name__}: {exc}", grpc.StatusCode.INTERNAL
            log.exception("gRPC request %s: unhandled error", request.id or "-")
            public = f"internal server error (request id {request.id or '-'}; the server log has the details)"
        if plane.observers:
            plane.observe(trace, "POST", INFER_PATH, status, started, request.id, error)
        if response is not None:
            return response
        await context.abort(code, public or error or "no answer")
        raise AssertionError("context.abort() raises")


Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]


class _TokenCheck(grpc.aio.ServerInterceptor):
    """Every method but the health probes needs ``authorization: Bearer <token>`` metadata."""

    def __init__(self, token: str) -> None:
        self.token = token.encode()

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metadata = dict(context.invocation_metadata() or ())
            given = metadata.get("authorization")
            try:
                check_bearer(
                    given.encode() if isinstance(given, str) else None,
                    self.token,
                    "",
                    "metadata 'authorization: Bearer",
                )
            except Unauthorized as exc:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)

        # No deserializer: a refused call's body is never parsed.
        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        if handler_call_details.method in OPEN_METHODS:
            return await continuation(handler_call_details)
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else value
                try:
                    check_bearer(given, self.token)
                except Unauthorized:
                    break
                return await continuation(handler_call_details)
        return self._deny


async def start_grpc(plane: DataPlane, options: GrpcOptions) -> grpc.aio.Server:
    """Start the gRPC server on the running loop; the caller stops it at shutdown."""
    interceptors = [_TokenCheck(options.auth_token)] if options.auth_token else []
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", options.max_message),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1),
        ],
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(_Servicer(plane), server)
    address = f"{options.host}:{options.port}"
    if options.ssl_certfile and options.ssl_keyfile:
        credentials = grpc.ssl_server_credentials(
            [(Path(options.ssl_keyfile).read_bytes(), Path(options.ssl_certfile).read_bytes())]
        )
        bound = server.add_secure_port(address, credentials)
    else:
        bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"gRPC could not bind {address}")
    await server.start()
    return server
