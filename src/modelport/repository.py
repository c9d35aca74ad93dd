"""The model repository: names -> versions -> loaded models.

::

    models/
      sentiment/ 1/ 2/ modelport.toml    versions are integer directories
      wine/model.joblib                  no version directory: version 1
      iris.onnx                          a single file: model "iris", version 1

A root that is itself one artifact (a file, an MLflow or Spark ML directory, or a
directory holding one artifact) serves that single model. Remote roots go through
fsspec and are copied into a local cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from modelport.config import ModelConfig, merge, read_config
from modelport.errors import ModelLoadError, ModelNotReady, ModelportError, UnknownModel, UnknownVersion
from modelport.flavors import detect
from modelport.loading import load_model
from modelport.model import Model
from modelport.storage import fetch, is_remote

__all__ = ["ModelState", "Repository", "VersionEntry"]

log = logging.getLogger("modelport.repository")

ModelState = Literal["LOADING", "AVAILABLE", "UNLOADING", "FAILED"]


@dataclass
class VersionEntry:
    version: int
    path: Path
    state: ModelState = "LOADING"
    reason: str = ""
    model: Model | None = None
    load_seconds: float = 0.0


@dataclass
class ModelEntry:
    name: str
    path: Path
    config: ModelConfig
    versions: dict[int, VersionEntry] = field(default_factory=dict)

    def latest(self) -> VersionEntry | None:
        ready = [v for v in self.versions.values() if v.state == "AVAILABLE"]
        return max(ready, key=lambda v: v.version) if ready else None


def _is_single_artifact(path: Path) -> bool:
    if path.is_file():
        return True
    try:
        detect(path)
        return True
    except ModelLoadError:
        return False


def _version_dirs(path: Path) -> dict[int, Path]:
    return {int(p.name): p for p in path.iterdir() if p.is_dir() and p.name.isdigit()}


class Repository:
    """Loads every model under ``root`` and answers lookups by name and version.

    Lookups are lock-free reads of a dict that is replaced, never mutated, when the
    repository changes, so the request path never waits on a load.
    """

    def __init__(self, root: str, *, compile: bool | None = None, name: str | None = None) -> None:
        self.root = root
        self.compile = compile
        self.single_name = name
        self._entries: dict[str, ModelEntry] = {}
        self._lock = threading.Lock()

    # -- discovery ---------------------------------------------------------------
    def _local_root(self) -> Path:
        path = fetch(self.root) if is_remote(self.root) else Path(self.root)
        if not path.exists():
            raise ModelLoadError(f"{self.root}: no such file or directory")
        return path

    def _discover(self, root: Path) -> dict[str, tuple[Path, ModelConfig, dict[int, Path]]]:
        found: dict[str, tuple[Path, ModelConfig, dict[int, Path]]] = {}
        if root.is_dir() and (versions := _version_dirs(root)) and not _is_single_artifact(root):
            cfg = read_config(root)
            found[self.single_name or cfg.name or root.name] = (root, cfg, versions)
            return found
        if _is_single_artifact(root):
            cfg = read_config(root if root.is_dir() else root.parent)
            name = self.single_name or cfg.name or (root.stem if root.is_file() else root.name)
            found[name] = (root, cfg, {1: root})
            return found
        for child in sorted(root.iterdir()):
            if child.name.startswith((".", "_")) or child.name == "modelport.toml":
                continue
            if child.is_file():
                try:
                    detect(child)
                except ModelLoadError:
                    continue
                found[child.stem] = (child, ModelConfig(), {1: child})
                continue
            cfg = read_config(child)
            versions = _version_dirs(child)
            name = cfg.name or child.name
            found[name] = (child, cfg, versions or {1: child})
        if not found:
            raise ModelLoadError(
                f"{self.root}: no models found; expected an artifact, or directories laid out as "
                "<name>/[<version>/]<artifact>"
            )
        return found

    # -- loading -------------------------------------------------------------------
    def _load_version(self, name: str, entry: VersionEntry, config: ModelConfig) -> None:
        start = time.perf_counter()
        try:
            own = read_config(entry.path) if entry.path.is_dir() else ModelConfig()
            cfg = merge(config, own)
            entry.model = load_model(entry.path, name=name, version=entry.version, compile=self.compile, config=cfg)
            entry.state = "AVAILABLE"
            entry.reason = ""
        except ModelportError as exc:
            entry.state = "FAILED"
            entry.reason = exc.message
            log.error("model %s version %d failed to load: %s", name, entry.version, exc.message)
        except Exception as exc:  # a broken artifact must not take the server down
            entry.state = "FAILED"
            entry.reason = f"{type(exc).__name__}: {exc}"
            log.exception("model %s version %d failed to load", name, entry.version)
        entry.load_seconds = time.perf_counter() - start

    def load(self) -> Repository:
        """Discover and load everything; a version that fails is kept as FAILED with its reason."""
        root = self._local_root()
        entries: dict[str, ModelEntry] = {}
        for name, (path, cfg, versions) in self._discover(root).items():
            entry = ModelEntry(name, path, cfg)
            for number in self._selected(cfg, versions):
                v = VersionEntry(number, versions[number])
                self._load_version(name, v, cfg)
                entry.versions[number] = v
            entries[name] = entry
        with self._lock:
            self._entries = entries
        return self

    @staticmethod
    def _selected(cfg: ModelConfig, versions: dict[int, Path]) -> list[int]:
        policy = cfg.versions or {}
        numbers = sorted(versions)
        if "specific" in policy:
            wanted = [int(v) for v in policy["specific"]]
            return [v for v in numbers if v in wanted]
        if "latest" in policy:
            return numbers[-int(policy["latest"]) :]
        return numbers

    # -- lookups -------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> Iterator[ModelEntry]:
        return iter(list(self._entries.values()))

    def entry(self, name: str) -> ModelEntry:
        entry = self._entries.get(name)
        if entry is None:
            loaded = ", ".join(self.names()) or "none"
            raise UnknownModel(f"unknown model '{name}'; loaded models: {loaded}")
        return entry

    def get(self, name: str, version: int | str | None = None) -> Model:
        """The model to answer a request; the latest available version when none is given."""
        entry = self.entry(name)
        if version is None or version == "":
            chosen = entry.latest()
            if chosen is None or chosen.model is None:
                states = ", ".join(f"{v.version}: {v.state} {v.reason}".strip() for v in entry.versions.values())
                raise ModelNotReady(f"model '{name}' has no available version ({states or 'no versions'})")
            return chosen.model
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise UnknownVersion(f"model '{name}': version '{version}' is not an integer") from None
        v = entry.versions.get(number)
        if v is None:
            have = ", ".join(str(n) for n in sorted(entry.versions)) or "none"
            raise UnknownVersion(f"model '{name}' has no version {number}; versions: {have}")
        if v.state != "AVAILABLE" or v.model is None:
            raise ModelNotReady(f"model '{name}' version {number} is {v.state}{': ' + v.reason if v.reason else ''}")
        return v.model

    def ready(self) -> bool:
        """True when every model has at least one available version."""
        entries = list(self._entries.values())
        return bool(entries) and all(e.latest() is not None for e in entries)

    def models(self) -> list[Model]:
        return [v.model for e in self.entries() for v in e.versions.values() if v.model is not None]

    def close(self) -> None:
        for model in self.models():
            model.close()
