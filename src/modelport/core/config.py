"""``modelport.toml``: per-model settings that sit beside the artifact.

::

    flavor = "sklearn"            # skip detection
    name = "wine"                 # serve under another name
    outputs = ["predict"]         # serve only these outputs, in this order
    compile = false               # keep the native runtime

    [signature]                   # override what the flavor infers
    inputs = [{name = "x", datatype = "FP64", shape = [-1, 13]}]

    [batching]
    max_batch_size = 64
    max_latency_ms = 2.0

    [limits]
    request_timeout = 5.0         # seconds; 504 after that (the server-wide --request-timeout otherwise)

    [versions]                    # which version directories to serve (default: all)
    latest = 2                    # or: all = true, or: specific = [1, 3]

    [traffic]                     # how unversioned requests split across versions
    weights = {1 = 95, 2 = 5}     # canary 95/5; A/B would be {1 = 50, 2 = 50}
    sticky_header = "x-user-id"   # same header value -> same version
    shadow = 3                    # gets a copy of every request; its answers are discarded

See docs/versions-and-traffic.md.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.core.errors import ConfigError
from modelport.core.signature import TensorSpec

__all__ = [
    "CONFIG_FILE",
    "BatchingConfig",
    "LimitsConfig",
    "ModelConfig",
    "TrafficConfig",
    "VersionPolicy",
    "read_config",
]

CONFIG_FILE = "modelport.toml"

# Flavor tables (sparkml, python, skops, torch, tensorflow) and entrypoint are kept in ModelConfig.extra
# for the flavor that reads them.
_FLAVOR_KEYS = ("sparkml", "entrypoint", "python", "skops", "torch", "tensorflow")
_TOP_KEYS = {
    "flavor",
    "name",
    "outputs",
    "compile",
    "signature",
    "batching",
    "limits",
    "versions",
    "traffic",
    *_FLAVOR_KEYS,
}


@dataclass(frozen=True)
class BatchingConfig:
    max_batch_size: int = 0
    max_latency_ms: float = 1.0

    @property
    def enabled(self) -> bool:
        return self.max_batch_size > 1


@dataclass(frozen=True)
class LimitsConfig:
    """``[limits]``: ``request_timeout`` in seconds (0 turns the server-wide one off for this model)."""

    request_timeout: float | None = None


@dataclass(frozen=True)
class VersionPolicy:
    """Which version directories a model serves: all of them, the newest N, or a fixed list."""

    kind: str = "all"  # "all", "latest" or "specific"
    latest: int = 1
    specific: tuple[int, ...] = ()

    def select(self, available: Iterable[int]) -> list[int]:
        numbers = sorted(available)
        if self.kind == "latest":
            return numbers[-self.latest :]
        if self.kind == "specific":
            return [n for n in numbers if n in self.specific]
        return numbers


@dataclass(frozen=True)
class TrafficConfig:
    """How requests without a version split across a model's versions (see router.py)."""

    weights: tuple[tuple[int, float], ...] = ()
    sticky_header: str | None = None
    shadow: int | None = None


@dataclass(frozen=True)
class ModelConfig:
    flavor: str | None = None
    name: str | None = None
    outputs: tuple[str, ...] | None = None
    compile: bool | None = None
    inputs_override: tuple[TensorSpec, ...] | None = None
    outputs_override: tuple[TensorSpec, ...] | None = None
    batching: BatchingConfig | None = None
    limits: LimitsConfig | None = None
    versions: VersionPolicy | None = None
    traffic: TrafficConfig | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: str | None = None


def _specs(where: str, value: Any) -> tuple[TensorSpec, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of tables with name, datatype and shape")
    try:
        return tuple(TensorSpec.from_dict(v) for v in value)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _version_number(where: str, value: Any) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise ConfigError(f"{where}: version '{value}' is not a non-negative integer")
    return int(text)


def parse_versions(data: Any, where: str) -> VersionPolicy:
    """``[versions]``: exactly one of ``latest = N``, ``all = true``, ``specific = [..]``."""
    allowed = "latest = N, all = true, specific = [versions]"
    if not isinstance(data, dict) or len(data) != 1 or not set(data) <= {"latest", "all", "specific"}:
        keys = ", ".join(sorted(data)) if isinstance(data, dict) else repr(data)
        raise ConfigError(f"{where}: [versions] takes exactly one of {allowed}; got {keys or 'nothing'}")
    ((key, value),) = data.items()
    if key == "latest":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: [versions] latest must be an integer >= 1, got {value!r}")
        return VersionPolicy("latest", latest=value)
    if key == "all":
        if value is not True:
            raise ConfigError(f"{where}: [versions] all must be true, got {value!r}")
        return VersionPolicy("all")
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: [versions] specific must be a non-empty list of version numbers")
    return VersionPolicy(
        "specific", specific=tuple(sorted({_version_number(f"{where}: [versions]", v) for v in value}))
    )


_TRAFFIC_KEYS = ("weights", "sticky_header", "shadow")


def parse_traffic(data: Any, where: str) -> TrafficConfig:
    """``[traffic]``: ``weights = {version = weight}``, optional ``sticky_header`` and ``shadow``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: [traffic] must be a table with {', '.join(_TRAFFIC_KEYS)}")
    bad = sorted(set(data) - set(_TRAFFIC_KEYS))
    if bad:
        raise ConfigError(f"{where}: [traffic] unknown key(s) {', '.join(bad)}; allowed: {', '.join(_TRAFFIC_KEYS)}")
    raw = data.get("weights", {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [traffic] weights must be a table of version = weight, e.g. {{1 = 95, 2 = 5}}")
    weights: list[tuple[int, float]] = []
    for key, value in raw.items():
        number = _version_number(f"{where}: [traffic] weights", key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
            raise ConfigError(f"{where}: [traffic] weight of version {number} must be a number >= 0, got {value!r}")
        weights.append((number, float(value)))
    if weights and not any(w > 0 for _, w in weights):
        raise ConfigError(f"{where}: [traffic] weights are all 0; give at least one version a positive weight")
    sticky = data.get("sticky_header")
    if sticky is not None and (not isinstance(sticky, str) or not sticky.strip()):
        raise ConfigError(f"{where}: [traffic] sticky_header must be a header name such as 'x-user-id'")
    shadow = data.get("shadow")
    if shadow is not None:
        shadow = _version_number(f"{where}: [traffic] shadow", shadow)
        if any(n == shadow and w > 0 for n, w in weights):
            raise ConfigError(
                f"{where}: [traffic] version {shadow} is the shadow and also has a weight; "
                "a shadow only receives copies, so give it weight 0 or remove it from weights"
            )
    return TrafficConfig(
        weights=tuple(sorted(weights)),
        sticky_header=sticky.strip().lower() if sticky else None,
        shadow=shadow,
    )


def parse_limits(data: Any, where: str) -> LimitsConfig:
    """``[limits]``: ``request_timeout = SECONDS`` (a number >= 0; 0 means no timeout for this model)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: [limits] must be a table, e.g. request_timeout = 5.0")
    bad = sorted(set(data) - {"request_timeout"})
    if bad:
        raise ConfigError(f"{where}: [limits] unknown key(s) {', '.join(bad)}; allowed: request_timeout")
    timeout = data.get("request_timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout < float("inf")
    ):
        raise ConfigError(f"{where}: [limits] request_timeout must be a number of seconds >= 0, got {timeout!r}")
    return LimitsConfig(request_timeout=None if timeout is None else float(timeout))


def parse_config(data: dict[str, Any], where: str) -> ModelConfig:
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    sig = data.get("signature", {})
    if not isinstance(sig, dict) or set(sig) - {"inputs", "outputs"}:
        raise ConfigError(f"{where}: [signature] takes only 'inputs' and 'outputs'")
    batching = None
    if "batching" in data:
        b = data["batching"]
        bad = sorted(set(b) - {"max_batch_size", "max_latency_ms"})
        if bad:
            raise ConfigError(
                f"{where}: [batching] unknown key(s) {', '.join(bad)}; allowed: max_batch_size, max_latency_ms"
            )
        try:
            batching = BatchingConfig(int(b.get("max_batch_size", 0)), float(b.get("max_latency_ms", 1.0)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: [batching] {exc}") from None
    outputs = data.get("outputs")
    if outputs is not None and (not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs)):
        raise ConfigError(f"{where}: 'outputs' must be a list of output names")
    flavor = data.get("flavor")
    if flavor is not None and not isinstance(flavor, str):
        raise ConfigError(f"{where}: 'flavor' must be a string")
    if flavor is None and "entrypoint" in data:
        flavor = "python"  # an entrypoint names a custom Python model
    return ModelConfig(
        flavor=flavor,
        name=data.get("name"),
        outputs=tuple(outputs) if outputs is not None else None,
        compile=data.get("compile"),
        inputs_override=_specs(f"{where}: signature.inputs", sig["inputs"]) if "inputs" in sig else None,
        outputs_override=_specs(f"{where}: signature.outputs", sig["outputs"]) if "outputs" in sig else None,
        batching=batching,
        limits=parse_limits(data["limits"], where) if "limits" in data else None,
        versions=parse_versions(data["versions"], where) if "versions" in data else None,
        traffic=parse_traffic(data["traffic"], where) if "traffic" in data else None,
        extra={k: data[k] for k in _FLAVOR_KEYS if k in data},
        path=where,
    )


def read_config(directory: Path) -> ModelConfig:
    """The ``modelport.toml`` in ``directory``, or defaults when there is none."""
    path = directory / CONFIG_FILE
    if not path.is_file():
        return ModelConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, str(path))


def merge(base: ModelConfig, override: ModelConfig) -> ModelConfig:
    """Settings of a version directory override the model directory's."""
    values = {}
    for name in ModelConfig.__dataclass_fields__:
        b, o = getattr(base, name), getattr(override, name)
        values[name] = o if o not in (None, {}) else b
    return ModelConfig(**values)


_SIZE_UNITS = {"K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2, "MIB": 1024**2}
_SIZE_UNITS |= {"G": 1024**3, "GB": 1024**3, "GIB": 1024**3}


def parse_size(value: str) -> int:
    """Bytes from ``"32MiB"``, ``"512K"`` or a plain number: the one size syntax of flags and variables."""
    text = value.strip().upper()
    for suffix in sorted(_SIZE_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            number = text[: -len(suffix)].strip()
            try:
                return int(float(number) * _SIZE_UNITS[suffix])
            except ValueError:
                break
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"'{value}' is not a size; use bytes or a unit such as 32MiB, 512K") from None
