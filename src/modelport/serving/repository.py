"""The model repository: names -> versions -> loaded models, kept in step with the disk.

::

    models/
      sentiment/ 1/ 2/ modelport.toml    versions are integer directories
      wine/model.joblib                  no version directory: version 1
      iris.onnx                          a single file: model "iris", version 1

A root that is itself one artifact (a file, an MLflow or Spark ML directory, or a
directory holding one artifact) serves that single model. Remote roots go through
fsspec and are copied into a local cache.

Concurrency: the request path (one event-loop thread per process) reads
``self._entries``, a dict that is replaced, never mutated, on every change, and each
entry carries an immutable :class:`~modelport.serving.router.Route`. Changes (the poller
thread and the repository API) are serialised by one lock and never run on the
event loop. A version is loaded and warmed before it joins a route; it leaves the
route before it is drained (its in-flight count reaches 0) and closed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from modelport.core.config import ModelConfig, merge, read_config
from modelport.core.errors import (
    ConfigError,
    ModelLoadError,
    ModelNotReady,
    ModelportError,
    UnknownModel,
    UnknownVersion,
)
from modelport.core.model import Model
from modelport.core.signature import Signature
from modelport.core.storage import fetch, is_remote, split_uri
from modelport.observability import faults
from modelport.runtimes.flavors import detect
from modelport.runtimes.loading import load_model
from modelport.serving.router import Route

__all__ = ["SAMPLE_FILE", "Lease", "ModelEntry", "ModelState", "Repository", "VersionEntry"]

log = logging.getLogger("modelport.repository")

ModelState = Literal["LOADING", "AVAILABLE", "UNLOADING", "FAILED"]

SAMPLE_FILE = "sample.json"
"""A saved request in a version directory, used to warm the version up before it takes traffic."""


@dataclass(eq=False)
class VersionEntry:
    """One version's lifecycle. ``inflight`` counts requests holding it (written only on the event loop)."""

    version: int
    path: Path
    state: ModelState = "LOADING"
    reason: str = ""
    model: Model | None = None
    load_seconds: float = 0.0
    fingerprint: tuple[Any, ...] = ()
    inflight: int = 0


class Lease:
    """One hold on a version: it is not closed while held. Release it once (a ``with`` block does)."""

    __slots__ = ("entry", "model")

    def __init__(self, entry: VersionEntry, model: Model) -> None:
        self.entry: VersionEntry | None = entry  # counted in entry.inflight by whoever made the lease
        self.model = model

    @staticmethod
    def take(entry: VersionEntry, model: Model) -> Lease:
        """Another hold on a version already leased once (a model call that outlives its request)."""
        entry.inflight += 1
        return Lease(entry, model)

    def release(self) -> None:
        entry, self.entry = self.entry, None
        if entry is not None:
            entry.inflight -= 1

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True, eq=False)
class ModelEntry:
    """An immutable snapshot of one model: its versions and the route over the available ones."""

    name: str
    path: Path
    config: ModelConfig
    versions: Mapping[int, VersionEntry] = field(default_factory=dict)
    route: Route[VersionEntry] = field(default_factory=lambda: Route((), ()))
    unloaded: bool = False
    config_error: str = ""

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


def _fingerprint(path: Path) -> tuple[Any, ...]:
    """Names, sizes and mtimes of the files under ``path``: a FAILED version is retried when it changes."""
    try:
        if path.is_file():
            st = path.stat()
            return ((path.name, st.st_size, st.st_mtime_ns),)
        out = []
        for base, _, files in os.walk(path):
            for f in files:
                st = os.stat(os.path.join(base, f))
                out.append((os.path.relpath(os.path.join(base, f), path), st.st_size, st.st_mtime_ns))
        return tuple(sorted(out))
    except OSError:
        return ()


def _synthetic_row(signature: Signature) -> dict[str, np.ndarray]:
    """One row of zeros (empty strings for BYTES) shaped like the signature's inputs."""
    batch = {}
    for spec in signature.inputs:
        shape = (1, *(d if d > 0 else 1 for d in spec.shape[1:]))
        if spec.datatype == "BYTES":
            batch[spec.name] = np.full(shape, "", dtype=object)
        else:
            batch[spec.name] = np.zeros(shape, dtype=spec.dtype)
    return batch


def _sample_batch(data: Any, where: Path) -> dict[str, Any]:
    """``sample.json``: a V2 infer body ``{"inputs": [{name, shape, datatype, data}]}`` or ``{input: values}``."""
    if isinstance(data, dict) and isinstance(data.get("inputs"), list):
        batch = {}
        for tensor in data["inputs"]:
            if not isinstance(tensor, dict) or not {"name", "data"} <= set(tensor):
                raise ModelLoadError(f"{where}: each of 'inputs' needs 'name' and 'data'")
            value = tensor["data"]
            if "shape" in tensor and not (tensor.get("datatype") == "BYTES"):
                value = np.reshape(np.asarray(value), tensor["shape"])
            elif "shape" in tensor:
                value = np.reshape(np.asarray(value, dtype=object), tensor["shape"])
            batch[str(tensor["name"])] = value
        return batch
    if isinstance(data, dict) and data:
        return {str(k): v for k, v in data.items()}
    raise ModelLoadError(f'{where}: expected a V2 infer body {{"inputs": [...]}} or an object keyed by input name')


_Found = dict[str, tuple[Path, ModelConfig, dict[int, Path]]]


_VERSION = re.compile(r"[0-9]{1,18}")


def parse_version(name: str, version: int | str) -> int:
    """A version number from a path, header or message: ASCII digits only, one rule for every protocol.

    ``str.isdigit`` and ``int`` also take '¹' or '١'; a version is written with 0-9.
    """
    if isinstance(version, int):
        return version
    if isinstance(version, str) and _VERSION.fullmatch(version):
        return int(version)
    shown = str(version) if len(str(version)) <= 40 else str(version)[:37] + "..."
    raise UnknownVersion(
        f"model '{name}': version '{shown}' is not an integer; a version is written with the digits 0-9"
    )


class Repository:
    """Loads the models under ``root``, answers lookups, and follows changes on disk.

    ::

        repo = Repository("models/").load()   # everything the version policies select
        repo.watch(poll_seconds=5)            # background thread: add, retry, drain, unload
        repo.get("wine").predict(...)
    """

    def __init__(self, root: str, *, compile: bool | None = None, name: str | None = None) -> None:
        self.root = root
        self.compile = compile
        self.single_name = name
        self.drain_seconds = 60.0
        """How long an unload waits for in-flight requests before closing anyway."""
        self.generation = 0
        """Counts changes, so caches built from the repository (the OpenAPI document) know when to rebuild."""
        self._entries: dict[str, ModelEntry] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._remote_state: tuple[Any, ...] | None = None
        self._remote_local: Path | None = None
        self._reported: dict[str, str] = {}

    # -- discovery ---------------------------------------------------------------
    def _local_root(self) -> Path:
        if is_remote(self.root):
            state = self._remote_listing()
            if self._remote_local is None or state != self._remote_state:
                self._remote_local = fetch(self.root)
                self._remote_state = state
            return self._remote_local
        path = fetch(self.root)
        if not path.exists():
            raise ModelLoadError(f"{self.root}: no such file or directory")
        return path

    def _remote_listing(self) -> tuple[Any, ...]:
        """Paths, sizes and change stamps under a remote root: fetch again only when they change."""
        fs, path = split_uri(self.root)
        if not fs.exists(path):
            raise ModelLoadError(f"{self.root}: no such file or directory")
        found = fs.find(path, detail=True)
        return tuple(
            sorted(
                (
                    p,
                    info.get("size"),
                    str(info.get("mtime") or info.get("LastModified") or info.get("ETag") or info.get("created")),
                )
                for p, info in found.items()
            )
        )

    def _discover(self, root: Path, errors: dict[str, str] | None = None) -> _Found:
        """Models under ``root``; with ``errors``, a bad modelport.toml is recorded there by directory, not raised."""
        found: _Found = {}
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
            try:
                cfg = read_config(child)
            except ConfigError as exc:
                if errors is None:
                    raise
                errors[str(child)] = exc.message
                continue
            versions = _version_dirs(child)
            name = cfg.name or child.name
            found[name] = (child, cfg, versions or {1: child})
        if not found and not errors:
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
            model = load_model(entry.path, name=name, version=entry.version, compile=self.compile, config=cfg)
            self._warm_up(model, entry.path)
            entry.model = model
            entry.reason = ""
            entry.state = "AVAILABLE"
        except ModelportError as exc:
            entry.reason = exc.message
            entry.state = "FAILED"
            log.error("model %s version %d failed to load: %s", name, entry.version, exc.message)
        except Exception as exc:  # a broken artifact must not take the server down
            entry.reason = f"{type(exc).__name__}: {exc}"
            entry.state = "FAILED"
            log.exception("model %s version %d failed to load", name, entry.version)
        if entry.state == "FAILED":
            # A file still being copied (truncated) fails here; it is tried again when its files change.
            faults.count("model_load", name)
        entry.load_seconds = time.perf_counter() - start

    @staticmethod
    def _warm_up(model: Model, path: Path) -> None:
        """Run one request before the version takes traffic: the saved sample, else a row of zeros.

        A saved sample that fails fails the load (the operator said it must work); a synthetic
        row that a model rejects (an unknown category, say) only logs a warning.
        """
        sample = path / SAMPLE_FILE if path.is_dir() else None
        if sample is not None and sample.is_file():
            try:
                batch = _sample_batch(json.loads(sample.read_text(encoding="utf-8")), sample)
                model.predict(batch)
            except (ValueError, ModelportError) as exc:
                message = exc.message if isinstance(exc, ModelportError) else str(exc)
                model.close()
                raise ModelLoadError(
                    f"model '{model.name}' version {model.version}: warm-up with {sample} failed: {message}"
                ) from None
            return
        try:
            model.predict(_synthetic_row(model.signature))
        except Exception as exc:
            log.warning(
                "model %s version %d: warm-up with a synthetic row failed (%s); save a %s to warm it up properly",
                model.name,
                model.version,
                exc,
                SAMPLE_FILE,
            )

    def _publish(self, entry: ModelEntry) -> ModelEntry:
        """Replace the model's snapshot (and its route) in one assignment the request path can read."""
        available = {n: v for n, v in entry.versions.items() if v.state == "AVAILABLE"}
        route: Route[VersionEntry] = Route.build(available, entry.config.traffic)
        fresh = ModelEntry(
            entry.name,
            entry.path,
            entry.config,
            dict(entry.versions),
            route,
            entry.unloaded,
            entry.config_error,
        )
        self._entries = {**self._entries, entry.name: fresh}
        self.generation += 1
        return fresh

    def _drop(self, name: str, v: VersionEntry) -> None:
        """Take a version out of the route, wait for its in-flight requests, then close it."""
        current = self._entries[name]
        v.state = "UNLOADING"
        self._publish(current)
        deadline = time.monotonic() + self.drain_seconds
        while v.inflight > 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        if v.inflight > 0:
            log.warning(
                "model %s version %d: %d requests still running after %.0f s; closing anyway",
                name,
                v.version,
                v.inflight,
                self.drain_seconds,
            )
        model, v.model = v.model, None
        if model is not None:
            try:
                model.close()
            except Exception:
                log.exception("model %s version %d: close failed", name, v.version)
        current = self._entries[name]
        self._publish(
            ModelEntry(
                name,
                current.path,
                current.config,
                {n: x for n, x in current.versions.items() if x is not v},
                unloaded=current.unloaded,
                config_error=current.config_error,
            )
        )
        log.info("model %s version %d unloaded", name, v.version)

    def _sync_model(
        self, name: str, path: Path, cfg: ModelConfig, dirs: dict[int, Path], *, force: bool = False
    ) -> ModelEntry:
        """Bring one model in line with its directory: load new versions, retry changed failures, drop the rest."""
        old = self._entries.get(name)
        if old is not None and old.unloaded and not force:
            return old
        wanted = cfg.versions.select(dirs) if cfg.versions is not None else sorted(dirs)
        versions = dict(old.versions) if old is not None else {}
        to_load: list[VersionEntry] = []
        for number in wanted:
            print_ = _fingerprint(dirs[number])
            current = versions.get(number)
            if current is None or (current.state == "FAILED" and (force or current.fingerprint != print_)):
                fresh = VersionEntry(number, dirs[number], fingerprint=print_)
                versions[number] = fresh
                to_load.append(fresh)
        to_drop = [v for n, v in versions.items() if n not in wanted and v.state != "UNLOADING"]
        if old is None or to_load or old.unloaded or old.config != cfg or old.config_error:
            self._publish(ModelEntry(name, path, cfg, versions))
        for v in reversed(to_load):  # newest first: it is the one that usually takes the traffic
            self._load_version(name, v, cfg)
            log.info("model %s version %d: %s%s", name, v.version, v.state, f" ({v.reason})" if v.reason else "")
            self._publish(self._entries[name])
        for v in to_drop:
            if v.state == "FAILED":
                snap = self._entries[name]
                self._publish(
                    ModelEntry(name, snap.path, snap.config, {n: x for n, x in snap.versions.items() if x is not v})
                )
            else:
                self._drop(name, v)
        return self._entries[name]

    def _remove_model(self, name: str) -> None:
        entry = self._entries[name]
        for v in list(entry.versions.values()):
            if v.state == "AVAILABLE":
                self._drop(name, v)
        self._entries = {k: e for k, e in self._entries.items() if k != name}
        self.generation += 1
        log.info("model %s removed", name)

    def load(self) -> Repository:
        """Discover and load everything; a bad modelport.toml raises, a bad artifact is kept as FAILED."""
        with self._lock:
            for name, (path, cfg, dirs) in self._discover(self._local_root()).items():
                self._sync_model(name, path, cfg, dirs)
        return self

    def refresh(self) -> None:
        """One poll: follow the disk. A bad modelport.toml keeps the model's previous settings."""
        with self._lock:
            errors: dict[str, str] = {}
            found = self._discover(self._local_root(), errors)
            for name, (path, cfg, dirs) in found.items():
                self._sync_model(name, path, cfg, dirs)
            kept = set()
            for directory, message in errors.items():
                served = self._name_at(directory)
                if served is None:  # a new model whose settings are wrong: say so once, load nothing
                    if self._reported.get(directory) != message:
                        log.error("%s; the model is not loaded until this is fixed", message)
                    continue
                kept.add(served)
                old = self._entries[served]
                if old.config_error != message:
                    log.error("model %s: %s; keeping the previous settings", served, message)
                    self._publish(
                        ModelEntry(
                            served, old.path, old.config, old.versions, unloaded=old.unloaded, config_error=message
                        )
                    )
            self._reported = dict(errors)
            for name in list(self._entries):
                if name not in found and name not in kept:
                    self._remove_model(name)

    def _name_at(self, directory: str) -> str | None:
        """The served name of the model loaded from ``directory`` (it may differ from the directory's name)."""
        for name, entry in self._entries.items():
            if str(entry.path) == directory:
                return name
        return None

    def watch(self, poll_seconds: float) -> None:
        """Poll the root every ``poll_seconds`` in a daemon thread (one per process); 0 turns it off."""
        if poll_seconds <= 0 or self._watcher is not None:
            return
        self._stop.clear()
        self._watcher = threading.Thread(target=self._poll, args=(poll_seconds,), name="modelport-watch", daemon=True)
        self._watcher.start()

    def _poll(self, poll_seconds: float) -> None:
        last_error = ""
        while not self._stop.wait(poll_seconds):
            try:
                self.refresh()
                if last_error:
                    log.warning("repository poll of %s works again", self.root)
                last_error = ""
            except Exception as exc:  # a flaky disk or bucket must not stop the poller
                faults.count("repository_poll")
                text = f"{type(exc).__name__}: {exc}"
                if text != last_error:  # once per distinct failure, not every poll
                    log.exception("repository poll of %s failed; serving what is loaded", self.root)
                last_error = text

    # -- explicit control (the V2 repository extension) --------------------------
    def load_named(self, name: str) -> ModelEntry:
        """Load (or reload) one model now, even one unloaded earlier; raises when a selected version fails."""
        with self._lock:
            errors: dict[str, str] = {}
            found = self._discover(self._local_root(), errors)
            for directory, message in errors.items():
                if self._name_at(directory) == name or Path(directory).name == name:
                    raise ConfigError(message)
            if name not in found:
                on_disk = ", ".join(sorted(found)) or "none"
                raise UnknownModel(f"no model '{name}' in the repository {self.root}; models on disk: {on_disk}")
            path, cfg, dirs = found[name]
            entry = self._sync_model(name, path, cfg, dirs, force=True)
        failed = [v for v in entry.versions.values() if v.state == "FAILED"]
        if failed:
            detail = "; ".join(f"version {v.version}: {v.reason}" for v in sorted(failed, key=lambda v: v.version))
            raise ModelLoadError(f"failed to load model '{name}': {detail}")
        if not entry.versions:
            raise ModelLoadError(f"failed to load model '{name}': no version directories match its version policy")
        return entry

    def unload_named(self, name: str) -> ModelEntry:
        """Drain and unload every version; the poller leaves the model alone until it is loaded again."""
        with self._lock:
            entry = self.entry(name)
            self._publish(
                ModelEntry(
                    name, entry.path, entry.config, entry.versions, unloaded=True, config_error=entry.config_error
                )
            )
            for v in list(entry.versions.values()):
                if v.state == "AVAILABLE":
                    self._drop(name, v)
            current = self._entries[name]
            return self._publish(
                ModelEntry(name, current.path, current.config, {}, unloaded=True, config_error=current.config_error)
            )

    def index(self, ready_only: bool = False) -> list[dict[str, str]]:
        """The repository index in Triton's shape: one row per version, name/version/state/reason."""
        rows = []
        for entry in sorted(self._entries.values(), key=lambda e: e.name):
            if not entry.versions:
                if not ready_only:
                    reason = "unloaded" if entry.unloaded else entry.config_error or "no versions"
                    rows.append({"name": entry.name, "version": "", "state": "UNAVAILABLE", "reason": reason})
                continue
            for v in sorted(entry.versions.values(), key=lambda v: v.version):
                if ready_only and v.state != "AVAILABLE":
                    continue
                rows.append({"name": entry.name, "version": str(v.version), "state": v.state, "reason": v.reason})
        return rows

    # -- lookups -------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._entries)

    def has(self, name: str) -> bool:
        return name in self._entries

    def entries(self) -> Iterator[ModelEntry]:
        return iter(list(self._entries.values()))

    def entry(self, name: str) -> ModelEntry:
        entry = self._entries.get(name)
        if entry is None:
            loaded = ", ".join(self.names()) or "none"
            raise UnknownModel(f"unknown model '{name}'; loaded models: {loaded}")
        return entry

    def _pick(self, name: str, version: int | str | None, headers: Mapping[bytes, bytes] | None) -> VersionEntry:
        entry = self.entry(name)
        if version is None or version == "":
            chosen = entry.route.choose(headers)
            if chosen is None:
                if entry.unloaded:
                    raise ModelNotReady(
                        f"model '{name}' is unloaded; load it with POST /v2/repository/models/{name}/load"
                    )
                states = ", ".join(f"{v.version}: {v.state} {v.reason}".strip() for v in entry.versions.values())
                raise ModelNotReady(f"model '{name}' has no available version ({states or 'no versions'})")
            return chosen[1]
        number = parse_version(name, version)
        v = entry.versions.get(number)
        if v is None:
            have = ", ".join(str(n) for n in sorted(entry.versions)) or "none"
            raise UnknownVersion(f"model '{name}' has no version {number}; versions: {have}")
        if v.state != "AVAILABLE" or v.model is None:
            raise ModelNotReady(f"model '{name}' version {number} is {v.state}{': ' + v.reason if v.reason else ''}")
        return v

    def get(self, name: str, version: int | str | None = None) -> Model:
        """The model that describes ``name`` (the route's main version when none is given); no lease."""
        entry = self.entry(name)
        if version is None or version == "":
            primary = entry.route.primary
            if primary is not None and primary[1].model is not None:
                return primary[1].model
        model = self._pick(name, version, None).model
        if model is None:
            raise ModelNotReady(f"model '{name}' is unloading")
        return model

    def lease(self, name: str, version: int | str | None = None, headers: Mapping[bytes, bytes] | None = None) -> Lease:
        """The version to answer one request, counted in flight until the lease is released.

        Use it as a context manager (``with repository.lease(...) as lease:``) so it is released
        on every path. Call on the event loop only. The state check after the increment closes
        the race with an unload in another thread: either the unloader sees this request in
        flight, or this request sees UNLOADING and picks again from the new route.
        """
        for _ in range(8):
            v = self._pick(name, version, headers)
            v.inflight += 1
            if v.state == "AVAILABLE" and v.model is not None:
                return Lease(v, v.model)
            v.inflight -= 1
        raise ModelNotReady(f"model '{name}' is changing versions; retry")

    def shadow(self, name: str) -> VersionEntry | None:
        entry = self._entries.get(name)
        if entry is None or entry.route.shadow is None:
            return None
        return entry.route.shadow[1]

    def ready(self) -> bool:
        """True when every loaded model has at least one available version (unloaded ones do not count)."""
        entries = [e for e in self._entries.values() if not e.unloaded]
        return bool(entries) and all(not e.route.empty for e in entries)

    def models(self) -> list[Model]:
        return [v.model for e in self.entries() for v in e.versions.values() if v.model is not None]

    def close(self) -> None:
        """Stop the poller and close every model."""
        self._stop.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=30)
        for model in self.models():
            model.close()
