"""The fast paths: where modelport answers through a quicker twin of a reference computation.

Each fast path has one owner module (the only place that chooses between the two), a name, and an
off switch: ``modelport serve --reference-path NAME`` (or :func:`use_reference`) makes every later
load or call take the reference computation instead. ``tests/test_fast_paths.py`` runs both paths
of every entry here on the same inputs; a fast path missing from that test fails it.

Why a switch: when an answer looks wrong, an operator can rule the fast path in or out without a
new release, and a benchmark can measure what each one buys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelport.core.errors import ConfigError


@dataclass(frozen=True)
class FastPath:
    name: str
    owner: str  # the module that chooses between the fast path and its reference
    fast: str
    reference: str


FAST_PATHS: dict[str, FastPath] = {
    path.name: path
    for path in (
        FastPath(
            "compiled",
            "modelport.runtimes.loading",
            "compiled numpy kernels for linear, tree and boosted models",
            "the framework's own predict (also `--no-compile` or `compile = false` per model)",
        ),
        FastPath(
            "sparkml-row",
            "modelport.runtimes.sparkml.pipeline",
            "per-row Python for one-row requests to a Spark ML pipeline",
            "the columnar transform of every stage",
        ),
        FastPath(
            "access-log",
            "modelport.observability.logs",
            "the access line formatted and written under the handler's lock",
            "a logging.LogRecord through the configured handlers",
        ),
    )
}

_reference: set[str] = set()


def use_reference(names: Iterable[str]) -> None:
    """Take the reference computation for each named fast path from now on, in this process."""
    wanted = set(names)
    unknown = sorted(wanted - FAST_PATHS.keys())
    if unknown:
        raise ConfigError(f"unknown fast path(s) {', '.join(unknown)}; the fast paths are {', '.join(FAST_PATHS)}")
    _reference.update(wanted)


def reset() -> None:
    """Every fast path on again (tests)."""
    _reference.clear()


def enabled(name: str) -> bool:
    """True unless ``name`` was switched to its reference path; asked at load, or per call where cheap."""
    return name not in _reference
