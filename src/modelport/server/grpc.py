"""Open Inference Protocol V2 over gRPC (``inference.GRPCInferenceService``).

Runs on the same event loop as the REST app and shares its DataPlane, so batching,
version routing and observers behave alike on both. Tensors arrive either typed in
``contents`` or as ``raw_input_contents`` (little-endian bytes, the binary layout);
answers use the form the request used.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from modelport.errors import BadRequest, ModelportError
from modelport.observe import RequestRecord
from modelport.server.binary import encode_tensor, tensor_from_bytes
from modelport.server.proto import grpc_predict_v2_pb2 as pb
from modelport.server.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from modelport.server.v2 import PLATFORMS

if TYPE_CHECKING:
    from modelport.server.app import ModelportApp

__all__ = ["start_grpc"]

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


class _Servicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, app: ModelportApp) -> None:
        self.app = app
        self.plane = app.plane

    async def _abort(self, context: grpc.aio.ServicerContext, exc: ModelportError) -> None:
        await context.abort(_CODES.get(exc.grpc_code, grpc.StatusCode.INTERNAL), exc.message)

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=self.app.ready())

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        meta = self.plane.server_metadata()
        return pb.ServerMetadataResponse(name=meta["name"], version=meta["version"], extensions=meta["extensions"])

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            entry = self.plane.repository.entry(request.name)
            if request.version:
                self.plane.model(request.name, request.version)
            ready = entry.latest() is not None
        except ModelportError as exc:
            if exc.status == 503:
                return pb.ModelReadyResponse(ready=False)
            await self._abort(context, exc)
        return pb.ModelReadyResponse(ready=ready)

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            model = self.plane.model(request.name, request.version or None)
            entry = self.plane.repository.entry(request.name)
        except ModelportError as exc:
            await self._abort(context, exc)

        def tensors(specs: Any) -> list[Any]:
            return [
                pb.ModelMetadataResponse.TensorMetadata(name=s.name, datatype=s.datatype, shape=s.shape) for s in specs
            ]

        versions = [str(model.version)] if request.version else [str(v) for v in sorted(entry.versions)]
        return pb.ModelMetadataResponse(
            name=model.name,
            versions=versions,
            platform=PLATFORMS.get(model.flavor, f"modelport_{model.flavor}"),
            inputs=tensors(model.signature.inputs),
            outputs=tensors(model.signature.outputs),
        )

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        model = None
        status, error = 200, None
        batch = result = None
        try:
            # Metadata keys play the part of HTTP headers for a sticky [traffic] split.
            headers = {k.encode(): v.encode() for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
            model = self.plane.model(request.model_name, request.model_version or None, headers)
            target = model
            if "signature_name" in request.parameters:  # the V2 parameter, as over HTTP
                target = model.for_signature(request.parameters["signature_name"].string_param)
            batch = self._decode(target, request)
            outputs = [o.name for o in request.outputs] or None
            result = await self.plane.infer(target, batch, outputs)
            if target is model:  # a shadow version is compared on the default signature only
                self.plane.shadow(model, batch, result)
            response = self._encode(target, request, result)
        except ModelportError as exc:
            status, error = exc.status, exc.message
            self._record(request, model, status, started, batch, result, error)
            await self._abort(context, exc)
        except Exception as exc:  # the server keeps serving
            status, error = 500, f"internal server error: {type(exc).__name__}: {exc}"
            self._record(request, model, status, started, batch, result, error)
            await context.abort(grpc.StatusCode.INTERNAL, error)
        finally:
            if model is not None:  # the version lease taken by plane.model(..., headers)
                self.plane.release(model)
        self._record(request, model, status, started, batch, result, error)
        return response

    def _record(
        self, request: Any, model: Any, status: int, started: float, batch: Any, result: Any, error: str | None
    ) -> None:
        if not self.app.has_observers:
            return
        duration = time.perf_counter() - started
        self.app.notify(
            RequestRecord(
                request_id=request.id,
                method="POST",
                path="/inference.GRPCInferenceService/ModelInfer",
                protocol="grpc",
                model=model.name if model is not None else request.model_name,
                version=model.version if model is not None else None,
                status=status,
                started=time.time() - duration,
                duration=duration,
                inputs=batch,
                outputs=result,
                error=error,
            )
        )

    def _decode(self, model: Any, request: Any) -> dict[str, np.ndarray]:
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

    def _encode(self, model: Any, request: Any, result: dict[str, np.ndarray]) -> Any:
        datatypes = model.output_datatypes
        response = pb.ModelInferResponse(model_name=model.name, model_version=model.version_text, id=request.id)
        use_raw = bool(request.raw_input_contents)
        for name, arr in result.items():
            datatype = datatypes.get(name, "FP64")
            out = response.outputs.add(name=name, datatype=datatype, shape=list(arr.shape))
            if use_raw:
                response.raw_output_contents.append(encode_tensor(arr, datatype))
            elif datatype == "BYTES":
                out.contents.bytes_contents.extend(
                    v if isinstance(v, bytes) else str(v).encode("utf-8") for v in arr.reshape(-1).tolist()
                )
            elif datatype == "FP16":
                response.raw_output_contents.append(encode_tensor(arr, datatype))
            else:
                getattr(out.contents, _FIELDS[datatype]).extend(arr.reshape(-1).tolist())
        return response


def _text_or_bytes(value: bytes) -> str | bytes:
    """UTF-8 text as str, anything else kept as the bytes it is (a binary string must arrive whole)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


async def start_grpc(app: ModelportApp, host: str, port: int) -> grpc.aio.Server:
    """Start the gRPC server on the running loop; the caller stops it at shutdown."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", app.options.max_body),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(_Servicer(app), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"gRPC could not bind {host}:{port}")
    await server.start()
    return server
