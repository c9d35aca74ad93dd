"""Logging set-up: JSON lines for machines, a readable line on a terminal, and access logs.

``--log-format auto`` (the default) picks ``text`` when stderr is a terminal and
``json`` otherwise, so a container's log collector gets one JSON object per line
and a person at a shell gets something readable. Every access-log record carries
the request id, which the server takes from ``X-Request-ID`` or generates and
echoes back, so a client's log line and the server's can be joined.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from typing import Any

import orjson

from modelport.core import fastpaths
from modelport.observability.observe import RequestRecord

__all__ = ["ACCESS_LOGGER", "LOG_FORMATS", "AccessLog", "JsonFormatter", "TextFormatter", "configure_logging"]

ACCESS_LOGGER = "modelport.access"
LOG_FORMATS = ("json", "text", "auto")

# Attributes every LogRecord has; anything else was passed in ``extra=`` and is output.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}


def resolve_format(fmt: str, stream: Any = None) -> str:
    """``auto`` -> ``text`` on a terminal, ``json`` otherwise."""
    if fmt not in LOG_FORMATS:
        from modelport.core.errors import ConfigError

        raise ConfigError(f"log format '{fmt}' is not supported; use one of {', '.join(LOG_FORMATS)}")
    if fmt != "auto":
        return fmt
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


_iso_cache: tuple[int, str] = (-1, "")


def _iso(created: float) -> str:
    global _iso_cache
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    cached_second, prefix = _iso_cache
    if cached_second != seconds:  # strftime once a second, not once a line
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _iso_cache = (seconds, prefix)
    return f"{prefix}.{millis:03d}Z"


FLUSH_EVERY_S = 0.25


class BufferedStderrHandler(logging.StreamHandler):
    """Log lines to a block-buffered duplicate of stderr, flushed every ``FLUSH_EVERY_S``.

    A flush per line is a ``write`` syscall per request: with access logs on, it was the
    largest cost left on the request path. Warnings and errors still flush at once, a
    background thread flushes quiet periods, and ``close`` (at exit) flushes the rest.
    """

    def __init__(self) -> None:
        raw = io.FileIO(os.dup(sys.stderr.fileno()), "w")
        stream = io.TextIOWrapper(io.BufferedWriter(raw, 1 << 16), encoding="utf-8", errors="replace")
        super().__init__(stream)
        self._last = time.monotonic()
        thread = threading.Thread(target=self._flusher, name="modelport-log-flush", daemon=True)
        thread.start()

    def _flusher(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY_S)
            self.flush_now()

    def flush_now(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self.stream is not None and not self.stream.closed:
                self.stream.flush()
        self._last = time.monotonic()

    def flush(self) -> None:
        if time.monotonic() - self._last >= FLUSH_EVERY_S:
            self.flush_now()

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.levelno >= logging.WARNING:
            self.flush_now()

    def close(self) -> None:
        try:
            self.flush_now()
        finally:
            super().close()


def _stderr_handler() -> logging.Handler:
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (e.g. captured): plain handler
        return logging.StreamHandler(sys.stderr)
    return BufferedStderrHandler()


def configure_logging(level: str = "info", fmt: str = "auto") -> str:
    """Route every logger (granian's too, see process/run.py) to one stderr handler; returns the format used."""
    chosen = resolve_format(fmt)
    # Per-record bookkeeping the formats never print (the logging docs' "Optimization" section):
    # the caller's file and line (a stack walk), thread, process and multiprocessing names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = _stderr_handler()
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return chosen


class AccessLog:
    """An observer writing one access-log record per request to ``modelport.access``.

    A ``logging`` call costs ~30 µs (a LogRecord, the formatter walking its attributes,
    locks), more than the rest of a fast request. When the record would reach exactly
    one plain stream handler with modelport's own JSON or text formatter and no filters
    (what ``configure_logging`` sets up), the line is formatted here, identically, and
    written under that handler's lock. Any other logging set-up gets a normal record.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)
        self._direct = fastpaths.enabled("access-log")  # decided once: the switch is set before observers exist

    def observe(self, record: RequestRecord) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        ms = round(record.duration * 1000.0, 3)
        target = f" {record.model} v{record.version}" if record.model is not None else ""
        message = f"{record.method} {record.path} {record.status}{target} {ms:.3f} ms id={record.request_id}"
        extra: dict[str, Any] = {
            "request_id": record.request_id,
            "method": record.method,
            "path": record.path,
            "protocol": record.protocol,
            "model": record.model,
            "version": record.version,
            "status": record.status,
            "latency_ms": ms,
        }
        if record.error is not None:
            extra["error"] = record.error
        handler = _direct_handler(logger) if self._direct else None
        if handler is None:
            logger.info("%s", message, extra=extra)
            return
        now = time.time()
        if type(handler.formatter) is JsonFormatter:
            head = {"time": _iso(now), "level": "info", "logger": logger.name, "message": message}
            line = orjson.dumps({**head, **extra}, default=str).decode()
        else:
            line = f"{_asctime(now)} INFO {logger.name}: {message}"
        handler.acquire()
        try:
            handler.stream.write(line + handler.terminator)
            handler.flush()
        finally:
            handler.release()


_DIRECT_FORMATTERS: tuple[type, ...] = (JsonFormatter, TextFormatter)


def _direct_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The one stream handler an INFO record of ``logger`` would reach, if writing to it directly is safe."""
    found: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if found is None or type(found) not in (logging.StreamHandler, BufferedStderrHandler):
        return None
    assert isinstance(found, logging.StreamHandler)
    if found.filters or found.level > logging.INFO or type(found.formatter) not in _DIRECT_FORMATTERS:
        return None
    return found


_asctime_cache: tuple[int, str] = (-1, "")


def _asctime(created: float) -> str:
    """``logging.Formatter``'s default asctime (local time, comma before the milliseconds)."""
    global _asctime_cache
    seconds = int(created)
    cached_second, prefix = _asctime_cache
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
        _asctime_cache = (seconds, prefix)
    return f"{prefix},{int((created - seconds) * 1000):03d}"
