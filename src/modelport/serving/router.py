"""Traffic policy: which version answers a request that names none.

A :class:`Route` is built once per repository change from the versions that are
AVAILABLE at that moment and the model's ``[traffic]`` table; the request path only
calls :meth:`Route.choose`, which is a ``random()`` and a bisect (or a hash of the
sticky header) with no locks. Weights of versions that are not available are dropped
and the rest renormalised, so a rollout never routes to a version that cannot answer.

Sticky routing hashes the header value with BLAKE2b, not ``hash()``: the same key
lands on the same version in every worker process and after restarts, as long as the
weights stay the same.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from modelport.core.config import TrafficConfig

__all__ = ["Route", "ShadowObserver", "ShadowStats", "sticky_point"]

V = TypeVar("V")

ShadowObserver = Callable[[str, int, float, "str | None", "bool | None"], None]
"""Called after each shadow call with (model, version, seconds, error or None, matched the primary or None)."""


def sticky_point(key: bytes) -> float:
    """A stable point in [0, 1) for a sticky key; uniform over keys."""
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True)
class Route(Generic[V]):
    """An immutable routing table over the available versions of one model.

    ``targets`` are (version, item) pairs; ``cumulative`` are the running sums of the
    normalised weights, ending at 1.0. Without a ``[traffic]`` table the newest
    available version takes everything.
    """

    targets: tuple[tuple[int, V], ...]
    cumulative: tuple[float, ...]
    sticky_header: bytes | None = None
    shadow: tuple[int, V] | None = None
    _random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        available: Mapping[int, V],
        traffic: TrafficConfig | None,
        *,
        rng: Callable[[], float] | None = None,
    ) -> Route[V]:
        extra = {"_random": rng} if rng is not None else {}
        shadow = None
        sticky = None
        if traffic is not None:
            sticky = traffic.sticky_header.encode("latin-1") if traffic.sticky_header else None
            if traffic.shadow is not None and traffic.shadow in available:
                shadow = (traffic.shadow, available[traffic.shadow])
        weighted = [(n, w) for n, w in (traffic.weights if traffic else ()) if w > 0 and n in available]
        if not weighted:
            # No weights, or none of the weighted versions is up: the newest one that is.
            candidates = [n for n in available if shadow is None or n != shadow[0]] or list(available)
            if not candidates:
                return cls((), (), sticky, shadow, **extra)
            newest = max(candidates)
            return cls(((newest, available[newest]),), (1.0,), sticky, shadow, **extra)
        total = sum(w for _, w in weighted)
        running = 0.0
        cumulative = []
        for _, w in weighted:
            running += w / total
            cumulative.append(running)
        cumulative[-1] = 1.0
        return cls(tuple((n, available[n]) for n, _ in weighted), tuple(cumulative), sticky, shadow, **extra)

    @property
    def empty(self) -> bool:
        return not self.targets

    @property
    def primary(self) -> tuple[int, V] | None:
        """The version with the largest share: what metadata without a version describes."""
        if not self.targets:
            return None
        shares = [b - a for a, b in zip((0.0, *self.cumulative), self.cumulative, strict=False)]
        return self.targets[max(range(len(shares)), key=lambda i: (shares[i], self.targets[i][0]))]

    def shares(self) -> dict[int, float]:
        """Each routed version's fraction of traffic."""
        out = {}
        previous = 0.0
        for (number, _), c in zip(self.targets, self.cumulative, strict=True):
            out[number] = c - previous
            previous = c
        return out

    def choose(self, headers: Mapping[bytes, bytes] | None = None) -> tuple[int, V] | None:
        targets = self.targets
        if len(targets) <= 1:
            return targets[0] if targets else None
        point = None
        if self.sticky_header is not None and headers is not None:
            key = headers.get(self.sticky_header)
            if key is not None:
                point = sticky_point(key)
        if point is None:
            point = self._random()
        index = bisect.bisect_right(self.cumulative, point)
        return targets[min(index, len(targets) - 1)]


@dataclass
class ShadowStats:
    """What the shadow copies of one model version did: counts and latency."""

    calls: int = 0
    errors: int = 0
    dropped: int = 0
    mismatches: int = 0
    seconds_total: float = 0.0
    seconds_max: float = 0.0
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, seconds: float, error: str | None, matched: bool | None) -> None:
        with self._lock:
            self.calls += 1
            self.seconds_total += seconds
            self.seconds_max = max(self.seconds_max, seconds)
            if error is not None:
                self.errors += 1
                self.last_error = error
            if matched is False:
                self.mismatches += 1

    def to_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "dropped": self.dropped,
            "mismatches": self.mismatches,
            "seconds_total": self.seconds_total,
            "seconds_max": self.seconds_max,
            "last_error": self.last_error,
        }
