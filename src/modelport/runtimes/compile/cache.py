"""The compile cache: a kernel that passed the agreement check, kept for the next start.

Importing scikit-learn (and with it scipy.stats and pandas) to unpickle a model is most of a
server's start time and memory: seconds and ~150 MB per process, for a model whose compiled
kernel then answers every request without it. So when a kernel serves, its numpy closures,
the signature and the check's verdict are written to
``$MODELPORT_COMPILE_CACHE`` (default ``~/.cache/modelport/compiled``), keyed by:

- the artifact's bytes (SHA-256 of the file, or of every file in a model directory),
- the flavor and the modelport.toml settings that change what the flavor loads,
- the source of ``modelport.runtimes.compile``, ``modelport.runtimes.flavors`` and ``modelport.core.signature``,
- the versions of Python, numpy, scipy, scikit-learn and LightGBM, and the CPU's instruction set.

The agreement check is deterministic in all of these, so a hit means the check would pass
again with the same verdict; it is not re-run. On a hit the native model is not loaded: it
loads on first need (a batch the kernel hands back with ``Fallback``, an output the kernel
does not serve, a batch above ``native_above`` rows, or an attribute only the native
predictor has), under a lock, and serves from then on. An entry is stored only if unpickling
it needs nothing but numpy, the standard library and modelport itself
(a restricted unpickler resolves only those names), so a hit never imports the framework.

``MODELPORT_COMPILE_CACHE=off`` turns the cache off. Entries are pickles read with the trust
given to the model files themselves: keep the cache directory private to the serving user.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelport.core.config import ModelConfig
from modelport.core.model import compute_datatype_of, predict_outputs
from modelport.core.signature import Signature

__all__ = ["ENV", "FORMAT", "LazyNative", "cache_dir", "entry_key", "environment", "read_entry", "write_entry"]

ENV = "MODELPORT_COMPILE_CACHE"
FORMAT = 1
FLAVORS = frozenset({"sklearn", "lightgbm", "mlflow"})  # the flavors compile_predictor handles
_OFF = {"0", "off", "false", "no", "none"}
# Modules an entry may name. Anything else (sklearn, lightgbm, pandas, ...) means the kernel
# still holds a framework object, and a hit would import that framework: such entries are not
# stored, and a stored one that names another module is not loaded.
_ALLOWED = ("numpy", "modelport", "builtins", "copyreg", "_codecs", "collections", "functools")
_CLOUDPICKLE = ("cloudpickle",)

log = logging.getLogger("modelport.compile")
stored = 0  # entries this process wrote (serve uses it to tell whether a second load would differ)


def cache_dir() -> Path | None:
    """Where entries live, or None when the cache is off."""
    chosen = os.environ.get(ENV)
    if chosen is not None:
        if chosen.strip().lower() in _OFF or not chosen.strip():
            return None
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modelport" / "compiled"


def _version(dist: str) -> str:
    """The installed version of ``dist``, from its ``*.dist-info`` directory name on ``sys.path``.

    Not importlib.metadata: that imports the email package (~30 ms, ~2 MB) into every worker.
    """
    prefix = dist.replace("-", "_").lower() + "-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            low = name.lower()
            if low.startswith(prefix) and low.endswith(".dist-info"):
                return name[len(prefix) : -len(".dist-info")]
    return "-"


def _cpu() -> str:
    """The machine and its instruction-set flags: BLAS and numpy pick kernels by them, and the last
    bits of a float result may differ between them, so a cache shared across machines must not
    carry one CPU's verdict to another."""
    import platform

    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.machine()} {hashlib.sha256(flags.encode()).hexdigest()[:16]}"


_code_digest: str | None = None


def _code() -> str:
    """A digest of the code that builds signatures and kernels: an edit to it invalidates every entry."""
    global _code_digest
    if _code_digest is None:
        runtimes = Path(__file__).resolve().parents[1]
        core = runtimes.parent / "core"
        h = hashlib.sha256()
        files = [*sorted((runtimes / "compile").glob("*.py")), *sorted((runtimes / "flavors").glob("*.py"))]
        for path in [*files, core / "signature.py", core / "model.py"]:
            h.update(path.name.encode())
            h.update(path.read_bytes())
        _code_digest = h.hexdigest()
    return _code_digest


def _hash_artifact(artifact: Path, h: Any) -> None:
    paths = [artifact] if artifact.is_file() else sorted(p for p in artifact.rglob("*") if p.is_file())
    for path in paths:
        h.update(str(path.relative_to(artifact) if path != artifact else path.name).encode())
        h.update(b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        h.update(b"\0")


def environment() -> str:
    """What besides the artifact decides a verdict: Python, modelport's code, the CPU, library versions."""
    versions = [sys.version, _code(), _cpu()] + [_version(d) for d in ("numpy", "scipy", "scikit-learn", "lightgbm")]
    return "\n".join(versions)


def entry_key(flavor: str, artifact: Path, config: ModelConfig) -> str | None:
    """The cache key for this artifact as this flavor loads it, or None when it cannot be cached."""
    if flavor not in FLAVORS:
        return None
    h = hashlib.sha256()
    settings = {"flavor": flavor, "outputs": config.outputs, "extra": config.extra, "format": FORMAT}
    h.update(json.dumps(settings, sort_keys=True, default=repr).encode())
    h.update(environment().encode())
    try:
        _hash_artifact(artifact, h)
    except OSError:
        return None
    return h.hexdigest()


class LazyNative:
    """Stands in for the native predictor until something needs it, then loads it once.

    ``signature`` and ``info`` come from the cache entry; an attribute the native predictor
    had (listed in ``names``) loads it; any other name is an AttributeError, as it would be
    on the real predictor, so ``getattr(p, "close", None)`` does not load the model.
    """

    def __init__(
        self, load: Callable[[], Any], signature: Signature, info: dict[str, Any], names: frozenset[str], where: str
    ) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._native: Any = None
        self._names = names
        self._where = where
        self.signature = signature
        self.info = info
        self.compute_datatype: str | None = None  # the native model's, from the cache entry

    @property
    def loaded(self) -> bool:
        return self._native is not None

    def native(self) -> Any:
        if self._native is None:
            with self._lock:
                if self._native is None:
                    started = time.perf_counter()
                    native = self._load()
                    log.info(
                        "%s: native model loaded on first need (%.0f ms)",
                        self._where,
                        (time.perf_counter() - started) * 1000,
                    )
                    self._native = native
        return self._native

    # Answered here, not by loading the native predictor to ask it.
    selects_outputs = True

    def predict(self, batch: Any, outputs: Any = None) -> Any:
        return predict_outputs(self.native(), batch, outputs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.__dict__.get("_names", ()):
            raise AttributeError(name)
        return getattr(self.native(), name)


def _names(predictor: Any) -> frozenset[str]:
    own = set(vars(predictor)) if hasattr(predictor, "__dict__") else set()
    return frozenset(n for n in own | set(dir(type(predictor))) if not n.startswith("_"))


class _Refused(Exception):
    pass


def _light(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in _ALLOWED + _CLOUDPICKLE)


def _guarded(importer: Callable[..., Any]) -> Callable[..., Any]:
    """cloudpickle's ``subimport`` and numpy's ``_ufunc_reconstruct`` import a module named in
    their arguments: hold that module to the same list."""

    def call(module: str, *rest: Any) -> Any:
        if not _light(module):
            raise _Refused(module)
        return importer(module, *rest)

    return call


class _LightUnpickler(pickle.Unpickler):
    """Resolves only names from the light modules; anything else raises :class:`_Refused`
    before it is imported."""

    def find_class(self, module: str, name: str) -> Any:
        if not _light(module):
            raise _Refused(f"{module}.{name}")
        found = super().find_class(module, name)
        if name in {"subimport", "dynamic_subimport", "_ufunc_reconstruct"}:
            return _guarded(found)
        return found


def _loads(data: bytes) -> Any:
    return _LightUnpickler(io.BytesIO(data)).load()


def _pickler() -> Any:
    import cloudpickle  # pickles the kernels' closures by value (standard pickle refuses closures)

    return cloudpickle


def write_entry(key: str, compiled: Any, native: Any, where: str) -> Path | None:
    """Store ``compiled`` (a CompiledPredictor over ``native``); None when it cannot be stored."""
    directory = cache_dir()
    if directory is None:
        return None
    entry = {
        "format": FORMAT,
        "kernel": compiled._kernel,
        "compiled": list(compiled._compiled),
        "native_above": compiled._native_above,
        "signature": native.signature,
        "native_info": dict(getattr(native, "info", {}) or {}),
        # what the native model computes its inputs in: the float32 range check must not need it loaded
        "compute_datatype": compute_datatype_of(native),
        "info": compiled.info,
        "refused": dict(getattr(compiled, "refused", {}) or {}),
        "names": sorted(_names(native)),
        "created": time.time(),
    }
    try:
        data = _pickler().dumps(entry, protocol=5)
    except Exception as exc:  # a kernel holding something unpicklable: serve it, just do not cache it
        log.debug("%s: compiled kernel not cached: %s: %s", where, type(exc).__name__, exc)
        return None
    try:
        _loads(data)  # what a later start will do: it must not need the framework
    except _Refused as exc:
        log.debug("%s: compiled kernel not cached: loading it would import %s", where, exc)
        return None
    except Exception as exc:
        log.debug("%s: compiled kernel not cached: it does not load back: %s: %s", where, type(exc).__name__, exc)
        return None
    path = directory / f"{key}.pkl"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers see a whole entry or none
    except OSError as exc:
        log.debug("%s: compiled kernel not cached in %s: %s", where, directory, exc)
        return None
    global stored
    stored += 1
    return path


def read_entry(key: str) -> dict[str, Any] | None:
    """The stored entry for ``key``, or None (missing, unreadable or from another format)."""
    directory = cache_dir()
    if directory is None:
        return None
    path = directory / f"{key}.pkl"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        entry = _loads(data)
    except Exception as exc:  # a damaged entry: load the model the long way and overwrite it
        log.warning("%s: unreadable compile cache entry ignored: %s: %s", path, type(exc).__name__, exc)
        return None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        return None
    entry["path"] = path
    return entry
