"""A client for running model services: Open Inference Protocol V2 and KServe V1 REST.

::

    from modelport.client import Client

    with Client("http://127.0.0.1:8080") as client:
        out = client.predict("wine", {"input": X})        # {"predict": ..., "predict_proba": ...}

It keeps connections open between calls, splits many rows into requests of
``batch_size`` rows, and retries what a retry can fix: refused or dropped
connections, timeouts, 429 and 503 (honouring ``Retry-After``), with exponential
backoff and jitter. A 4xx answer is never retried: it raises the matching
:mod:`modelport.core.errors` class with the server's message. :class:`AsyncClient` is the
same for asyncio and sends a call's requests concurrently.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelport.core.errors import (
    BadRequest,
    InvalidInput,
    MethodNotAllowed,
    ModelFailed,
    ModelNotReady,
    ModelportError,
    NotFound,
    PayloadTooLarge,
    ServerError,
    Unauthorized,
    UnknownModel,
    UnsupportedMediaType,
)
from modelport.core.nulls import json_numbers, numbers_from_json
from modelport.core.signature import DATATYPES, NULL, SPECIAL_FLOATS, Batch, Signature, datatype_of

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncClient", "Client", "EndpointUnavailable", "Protocol"]

Protocol = Literal["v1", "v2"]

# What a retry can fix: the server is starting, restarting, overloaded or behind a busy proxy.
RETRY_STATUSES = frozenset({429, 502, 503, 504})

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 8
DEFAULT_BACKOFF = 0.2
DEFAULT_MAX_BACKOFF = 5.0


class EndpointUnavailable(ModelNotReady):
    """The service could not be reached, or kept answering 429/503, after every retry."""


_BY_STATUS: dict[int, type[ModelportError]] = {
    400: InvalidInput,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    500: ModelFailed,
    503: ModelNotReady,
}


def _error_for(status: int, url: str, body: bytes) -> ModelportError:
    """The modelport error for an HTTP error answer, carrying the server's own message."""
    message = body.decode("utf-8", errors="replace").strip()
    try:
        import orjson

        parsed = orjson.loads(body)
        if isinstance(parsed, dict) and "error" in parsed:
            message = str(parsed["error"])
    except ValueError:
        pass
    cls = _BY_STATUS.get(status) or (BadRequest if 400 <= status < 500 else ServerError)
    if status == 404 and "model" in message.lower():
        cls = UnknownModel
    return cls(f"{url}: HTTP {status}: {message or 'no message'}")


def _as_columns(inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Inputs as named columns; a list of row dicts is turned into columns."""
    if isinstance(inputs, Mapping):
        return {k: v if isinstance(v, np.ndarray) else np.asarray(v) for k, v in inputs.items()}
    rows = list(inputs)
    if not rows or not all(isinstance(r, Mapping) for r in rows):
        raise InvalidInput("inputs must be a mapping of input name to values, or a non-empty list of row dicts")
    names = list(rows[0])
    return {n: np.asarray([r.get(n) for r in rows]) for n in names}


def _rows(columns: Mapping[str, np.ndarray]) -> int:
    counts = {n: (int(a.shape[0]) if a.ndim else 1) for n, a in columns.items()}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"'{n}': {r}" for n, r in counts.items())
        raise InvalidInput(f"inputs have different numbers of rows ({detail})")
    return next(iter(counts.values()), 0)


class _Codec:
    """Request bodies and answers for one protocol; shared by the sync and async clients."""

    def __init__(self, base: str, protocol: Protocol) -> None:
        if protocol not in ("v1", "v2"):
            raise ValueError(f"protocol '{protocol}' is not supported; use 'v1' or 'v2'")
        self.base = base.rstrip("/")
        self.protocol = protocol

    def infer_url(self, model: str, version: str | int | None) -> str:
        ver = f"/versions/{version}" if version is not None else ""
        if self.protocol == "v2":
            return f"{self.base}/v2/models/{model}{ver}/infer"
        return f"{self.base}/v1/models/{model}{ver}:predict"

    def metadata_url(self, model: str, version: str | int | None) -> str:
        ver = f"/versions/{version}" if version is not None else ""
        return f"{self.base}/v2/models/{model}{ver}"

    def encode(self, columns: Mapping[str, np.ndarray], outputs: Sequence[str] | None) -> bytes:
        import orjson

        if self.protocol == "v2":
            tensors = []
            for name, arr in columns.items():
                datatype = "BYTES" if arr.dtype.kind in "OUS" else datatype_of(arr.dtype)
                tensors.append(
                    {"name": name, "shape": list(arr.shape), "datatype": datatype, "data": _flat(arr, datatype)}
                )
            body: dict[str, Any] = {"inputs": tensors}
            if outputs:
                body["outputs"] = [{"name": o} for o in outputs]
        else:
            body = {"inputs": {name: _nested(arr) for name, arr in columns.items()}}
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    def decode(self, url: str, content: bytes, outputs: Sequence[str] | None) -> Batch:
        import orjson

        try:
            body = orjson.loads(content)
        except ValueError as exc:
            raise ServerError(f"{url}: the answer is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise ServerError(f"{url}: the answer is not a JSON object")
        result: Batch = {}
        if self.protocol == "v2":
            for t in body.get("outputs") or []:
                dtype = DATATYPES.get(str(t.get("datatype")), np.dtype(object))
                data = (
                    numbers_from_json(t.get("data"), dtype) if dtype.kind == "f" else np.asarray(t.get("data"), dtype)
                )
                result[str(t["name"])] = data.reshape(t["shape"]) if "shape" in t else data
        elif isinstance(body.get("outputs"), dict):
            result = {k: _array(v) for k, v in body["outputs"].items()}
        elif "outputs" in body:
            # V1 drops the name of a lone output; it is the one asked for, if one was.
            result = {outputs[0] if outputs and len(outputs) == 1 else "outputs": _array(body["outputs"])}
        elif "predictions" in body:
            preds = body["predictions"]
            if preds and isinstance(preds[0], dict):
                result = {k: _array([p.get(k) for p in preds]) for k in preds[0]}
            else:
                result = {outputs[0] if outputs and len(outputs) == 1 else "predictions": _array(preds)}
        else:
            raise ServerError(f"{url}: the answer has no 'outputs' or 'predictions'")
        if outputs:
            missing = [o for o in outputs if o not in result]
            if missing:
                raise ServerError(f"{url}: the answer lacks output(s) {', '.join(missing)}")
            result = {o: result[o] for o in outputs}
        return result


def _flat(arr: np.ndarray, datatype: str) -> Any:
    if datatype == "BYTES":
        return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in arr.reshape(-1).tolist()]
    # JSON has no NaN: NaN goes as "NaN", ±inf as "Infinity"/"-Infinity", and NULL (a null) as null.
    return json_numbers(np.ascontiguousarray(arr).reshape(-1))


def _nested(arr: np.ndarray) -> Any:
    if arr.dtype.kind in "OUS":
        return arr.tolist()
    return json_numbers(np.ascontiguousarray(arr))


def _array(value: Any) -> np.ndarray:
    """A V1 answer's column (no datatypes there): numbers with null/"NaN"/"Infinity" become float64, null as NULL."""
    arr = np.asarray(value)
    if arr.dtype.kind in "US":
        if arr.size and set(arr.reshape(-1).tolist()) <= SPECIAL_FLOATS.keys():
            return arr.astype(np.float64)
        return arr.astype(object)
    if arr.dtype == object and arr.size:
        flat = arr.reshape(-1).tolist()
        numbers = [v for v in flat if v is not None]
        if numbers and all(
            (isinstance(v, int | float) and not isinstance(v, bool)) or (isinstance(v, str) and v in SPECIAL_FLOATS)
            for v in numbers
        ):
            out = np.array([NULL if v is None else SPECIAL_FLOATS.get(v, v) for v in flat], dtype=np.float64)
            return out.reshape(arr.shape)
    return arr


def _chunks(columns: Mapping[str, np.ndarray], size: int | None) -> list[dict[str, np.ndarray]]:
    n = _rows(columns)
    if not size or n <= size:
        return [dict(columns)]
    return [{k: v[i : i + size] for k, v in columns.items()} for i in range(0, n, size)]


def _concat(parts: list[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class _Policy:
    """Retry timing: exponential backoff with jitter, or the server's Retry-After."""

    def __init__(self, retries: int, backoff: float, max_backoff: float) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), max(self.max_backoff, 30.0))
            except ValueError:
                pass
        base = min(self.max_backoff, self.backoff * (2**attempt))
        return base * (0.5 + random.random() / 2)


def _timeout(timeout: float | None) -> Any:
    import httpx

    if timeout is None:
        return httpx.Timeout(None)
    return httpx.Timeout(timeout, connect=min(timeout, 10.0))


class Client:
    """A synchronous client for one service; thread-safe, keeps connections open.

    **Parameters:** ``url`` the service root (``http://host:port``); ``protocol`` ``"v2"``
    (default) or ``"v1"``; ``timeout`` seconds per request; ``retries`` further tries
    after a retryable failure; ``backoff``/``max_backoff`` the first and largest wait;
    ``batch_size`` rows per request (None: one request per call); ``headers`` sent with
    every request (e.g. ``{"Authorization": "Bearer ..."}``).
    """

    def __init__(
        self,
        url: str,
        *,
        protocol: Protocol = "v2",
        timeout: float | None = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        batch_size: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        import httpx

        self._codec = _Codec(url, protocol)
        self._policy = _Policy(retries, backoff, max_backoff)
        self.batch_size = batch_size
        self._http = httpx.Client(
            timeout=_timeout(timeout), headers={"Content-Type": "application/json", **(headers or {})}
        )
        self.attempts = 0  # requests sent, retries included (for logs and tests)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, url: str, body: bytes | None = None) -> httpx.Response:
        import httpx

        last = ""
        for attempt in range(self._policy.retries + 1):
            self.attempts += 1
            retry_after = None
            try:
                resp = self._http.request(method, url, content=body)
            except httpx.TransportError as exc:  # refused, reset, timed out: the request may not have run
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    return resp
                if resp.status_code not in RETRY_STATUSES:
                    raise _error_for(resp.status_code, url, resp.content)
                last = f"HTTP {resp.status_code}: {resp.text.strip()[:200]}"
                retry_after = resp.headers.get("retry-after")
            if attempt < self._policy.retries:
                time.sleep(self._policy.delay(attempt, retry_after))
        raise EndpointUnavailable(f"{method} {url} failed after {self._policy.retries + 1} attempts; last: {last}")

    def ready(self) -> bool:
        """True when the server answers 200 on ``/v2/health/ready`` (no retries)."""
        import httpx

        try:
            return self._http.get(f"{self._codec.base}/v2/health/ready").status_code == 200
        except httpx.TransportError:
            return False

    def metadata(self, model: str, version: str | int | None = None) -> dict[str, Any]:
        """The model's V2 metadata (name, versions, platform, inputs, outputs)."""
        import orjson

        url = self._codec.metadata_url(model, version)
        result: dict[str, Any] = orjson.loads(self._send("GET", url).content)
        return result

    def signature(self, model: str, version: str | int | None = None) -> Signature:
        return Signature.from_dict(self.metadata(model, version))

    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        version: str | int | None = None,
        outputs: Sequence[str] | None = None,
    ) -> Batch:
        """Predict ``inputs`` (name -> values, or a list of row dicts); rows go in ``batch_size`` requests."""
        url = self._codec.infer_url(model, version)
        parts = []
        for chunk in _chunks(_as_columns(inputs), self.batch_size):
            resp = self._send("POST", url, self._codec.encode(chunk, outputs))
            parts.append(self._codec.decode(url, resp.content, outputs))
        return _concat(parts)


class AsyncClient:
    """The asyncio twin of :class:`Client`; one call's requests run ``concurrency`` at a time."""

    def __init__(
        self,
        url: str,
        *,
        protocol: Protocol = "v2",
        timeout: float | None = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        batch_size: int | None = None,
        concurrency: int = 4,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        import httpx

        self._codec = _Codec(url, protocol)
        self._policy = _Policy(retries, backoff, max_backoff)
        self.batch_size = batch_size
        self.concurrency = max(1, concurrency)
        self._http = httpx.AsyncClient(
            timeout=_timeout(timeout), headers={"Content-Type": "application/json", **(headers or {})}
        )
        self.attempts = 0

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, url: str, body: bytes | None = None) -> httpx.Response:
        import httpx

        last = ""
        for attempt in range(self._policy.retries + 1):
            self.attempts += 1
            retry_after = None
            try:
                resp = await self._http.request(method, url, content=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    return resp
                if resp.status_code not in RETRY_STATUSES:
                    raise _error_for(resp.status_code, url, resp.content)
                last = f"HTTP {resp.status_code}: {resp.text.strip()[:200]}"
                retry_after = resp.headers.get("retry-after")
            if attempt < self._policy.retries:
                await asyncio.sleep(self._policy.delay(attempt, retry_after))
        raise EndpointUnavailable(f"{method} {url} failed after {self._policy.retries + 1} attempts; last: {last}")

    async def ready(self) -> bool:
        import httpx

        try:
            return (await self._http.get(f"{self._codec.base}/v2/health/ready")).status_code == 200
        except httpx.TransportError:
            return False

    async def metadata(self, model: str, version: str | int | None = None) -> dict[str, Any]:
        import orjson

        url = self._codec.metadata_url(model, version)
        result: dict[str, Any] = orjson.loads((await self._send("GET", url)).content)
        return result

    async def signature(self, model: str, version: str | int | None = None) -> Signature:
        return Signature.from_dict(await self.metadata(model, version))

    async def predict(
        self,
        model: str,
        inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        version: str | int | None = None,
        outputs: Sequence[str] | None = None,
    ) -> Batch:
        url = self._codec.infer_url(model, version)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(chunk: dict[str, np.ndarray]) -> Batch:
            async with gate:
                resp = await self._send("POST", url, self._codec.encode(chunk, outputs))
            return self._codec.decode(url, resp.content, outputs)

        parts = await asyncio.gather(*(one(c) for c in _chunks(_as_columns(inputs), self.batch_size)))
        return _concat(list(parts))
