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
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError
from modelport.signature import TensorSpec

__all__ = ["CONFIG_FILE", "BatchingConfig", "ModelConfig", "read_config"]

CONFIG_FILE = "modelport.toml"

_TOP_KEYS = {"flavor", "name", "outputs", "compile", "signature", "batching", "versions", "traffic", "sparkml"}


@dataclass(frozen=True)
class BatchingConfig:
    max_batch_size: int = 0
    max_latency_ms: float = 1.0

    @property
    def enabled(self) -> bool:
        return self.max_batch_size > 1


@dataclass(frozen=True)
class ModelConfig:
    flavor: str | None = None
    name: str | None = None
    outputs: tuple[str, ...] | None = None
    compile: bool | None = None
    inputs_override: tuple[TensorSpec, ...] | None = None
    outputs_override: tuple[TensorSpec, ...] | None = None
    batching: BatchingConfig | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    path: str | None = None


def _specs(where: str, value: Any) -> tuple[TensorSpec, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of tables with name, datatype and shape")
    try:
        return tuple(TensorSpec.from_dict(v) for v in value)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


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
    return ModelConfig(
        flavor=flavor,
        name=data.get("name"),
        outputs=tuple(outputs) if outputs is not None else None,
        compile=data.get("compile"),
        inputs_override=_specs(f"{where}: signature.inputs", sig["inputs"]) if "inputs" in sig else None,
        outputs_override=_specs(f"{where}: signature.outputs", sig["outputs"]) if "outputs" in sig else None,
        batching=batching,
        versions=dict(data.get("versions", {})),
        traffic=dict(data.get("traffic", {})),
        extra={k: data[k] for k in ("sparkml",) if k in data},
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
