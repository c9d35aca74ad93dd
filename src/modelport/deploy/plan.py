"""The settings every target shares, the serve command line they run, and how files are written."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelport.deploy.footprint import Footprint
from modelport.deploy.inventory import FoundModel

__all__ = ["HEALTH_LIVE", "HEALTH_READY", "Plan", "dump_yaml", "modelport_version", "write_files"]

HEALTH_LIVE = "/v2/health/live"
HEALTH_READY = "/v2/health/ready"
METRICS = "/metrics"
AUTH_ENV = "MODELPORT_AUTH_TOKEN"
CACHE_DIR = "/var/cache/modelport"  # the compile cache inside every image (MODELPORT_COMPILE_CACHE)
BAKED_CACHE = "/opt/modelport/compiled"  # filled by `modelport compile` at image build time
UID = 10001


def modelport_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modelport")
    except PackageNotFoundError:
        return "0.0.0"


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


@dataclass
class Plan:
    """What to deploy and how the server inside runs; each target turns it into its own files."""

    name: str = "modelport"
    image: str = "modelport:latest"
    model_uri: str = "/models"  # where the running server reads the models (a path in the image, s3://, gs://)
    port: int = 8080
    grpc_port: int | None = None
    workers: int = 1
    drain_seconds: float = 5.0
    grace_seconds: float = 20.0
    auth_token_secret: str | None = None
    cpu: str | None = None
    memory_mb: int | None = None  # an explicit memory size: wins over the measured footprint
    models: list[FoundModel] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    footprint: Footprint | None = None
    python: str = field(default_factory=lambda: f"{sys.version_info.major}.{sys.version_info.minor}")

    def serve_args(self, host: str = "0.0.0.0", *, port: str | None = None, drain: bool = True) -> list[str]:
        """``modelport serve`` arguments (after ``serve``) as the platform runs them."""
        args = [self.model_uri, f"--host={host}", f"--port={port or self.port}"]
        if self.grpc_port is not None:
            args.append(f"--grpc-port={self.grpc_port}")
        args.append(f"--workers={self.workers}")
        if drain:
            args += [f"--drain-seconds={self.drain_seconds:g}", f"--grace-seconds={self.grace_seconds:g}"]
        return args

    @property
    def termination_grace_seconds(self) -> int:
        """Above drain + grace, so the kubelet's SIGKILL never cuts the flush short (docs/operations.md)."""
        return int(math.ceil(self.drain_seconds + self.grace_seconds)) + 5

    def memory_needed_mb(self, floor: int = 256) -> int:
        """The memory to give one instance: explicit, else the measured first-start peak + 25%, else ``floor``*2."""
        if self.memory_mb is not None:
            return self.memory_mb
        if self.footprint is None:
            return max(floor * 2, 512)
        worst = max(self.footprint.peak_mb, self.footprint.cached_peak_mb)
        return max(floor, _round_up(worst * 1.25, 64))

    def memory_request_mb(self) -> int:
        """What a replica settles at (+20%), for schedulers' requests."""
        if self.footprint is None or self.memory_mb is not None:
            return max(128, self.memory_needed_mb() // 2)
        settled = max(self.footprint.settled_mb, self.footprint.cached_settled_mb)
        return min(self.memory_needed_mb(), max(128, _round_up(settled * 1.2, 64)))

    def footprint_note(self) -> str:
        if self.memory_mb is not None:
            return f"memory {self.memory_mb} MiB as given (--memory)"
        if self.footprint is None:
            return "memory not measured (no local models, no --memory): a default size"
        return "measured on the build machine: " + self.footprint.describe()


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order built, long strings unwrapped, lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, data: str) -> Any:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(docs: list[dict[str, Any]], header: str = "") -> str:
    """YAML documents separated by ``---``, with ``header`` as leading comment lines."""
    body = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    lines = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines()) if header else ""
    return lines + body


def write_files(files: dict[str, str], out: Path | None) -> list[Path]:
    """Write ``{relative name: text}`` under ``out``; with no ``out`` the caller prints them."""
    written: list[Path] = []
    if out is None:
        return written
    for name, text in files.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written
