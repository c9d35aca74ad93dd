"""The random draws Spark's LDA starts from: commons-math3's MersenneTwister under breeze's Gamma sampler.

Spark infers a document's topics from a Gamma(shape, 1/shape) start drawn by
``breeze.stats.distributions.Gamma`` over ``org.apache.commons.math3.random.MersenneTwister(seed)``,
a new generator per document, so every document starts from the same vector. Reproducing those
draws bit for bit needs the JVM libraries' own definitions (public algorithms, re-implemented here):

- ``MersenneTwister(long seed)`` seeds MT19937 with ``init_by_array`` over the two 32-bit words
  ``[seed >>> 32, seed & 0xffffffff]`` and tempers as the reference generator does;
  ``next(bits)`` is the top ``bits`` bits of one 32-bit output.
- ``nextDouble`` = ``(next(26) << 26 | next(26)) * 2^-52``; ``nextGaussian`` is Box-Muller over two
  ``nextDouble`` values (``sqrt(-2 log y) * cos(2πx)``, the ``sin`` twin kept for the next call).
  commons-math3 computes the log, cos and sin with its ``FastMath``; Python's ``math`` stands in
  (the tests check the draws against the JVM's own through py4j).
- breeze's ``Gamma.draw``: shape 1 is an exponential, shape < 1 the rejection method from numpy's
  ``distributions.c`` (two uniforms per try), shape > 1 Marsaglia and Tsang's method with
  ``d = shape - 1/3``, ``c = 1/sqrt(9d)``: a Gaussian ``x`` (redrawn while ``1 + cx <= 0``), a
  uniform ``u``, accepted when ``u < 1 - 0.0331 x⁴`` or ``log u < x²/2 + d(1 - v + log v)``
  with ``v = (1 + cx)³``; the draw is ``scale · d · v``.
"""

from __future__ import annotations

import math

__all__ = ["MersenneTwister", "gamma_samples", "java_string_hash"]

_N, _M = 624, 397
_MASK = 0xFFFFFFFF
_UPPER, _LOWER = 0x80000000, 0x7FFFFFFF
_MATRIX_A = 0x9908B0DF


def java_string_hash(text: str) -> int:
    """``String.hashCode()`` as a signed 32-bit int (over UTF-16 code units, as Java counts them)."""
    h = 0
    units = text.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & _MASK
    return h - (1 << 32) if h & _UPPER else h


class MersenneTwister:
    """``org.apache.commons.math3.random.MersenneTwister`` seeded with a Java ``long``."""

    def __init__(self, seed: int) -> None:
        seed &= (1 << 64) - 1
        self._seed_array([seed >> 32, seed & _MASK])
        self._gaussian: float | None = None

    def _seed_int(self, seed: int) -> None:
        mt = [0] * _N
        mt[0] = seed & _MASK
        for i in range(1, _N):
            prev = mt[i - 1]
            mt[i] = (1812433253 * (prev ^ (prev >> 30)) + i) & _MASK
        self._mt = mt
        self._index = _N

    def _seed_array(self, key: list[int]) -> None:
        self._seed_int(19650218)
        mt = self._mt
        i, j = 1, 0
        for _ in range(max(_N, len(key))):
            prev = mt[i - 1]
            mt[i] = ((mt[i] ^ ((prev ^ (prev >> 30)) * 1664525)) + key[j] + j) & _MASK
            i += 1
            j += 1
            if i >= _N:
                mt[0] = mt[_N - 1]
                i = 1
            if j >= len(key):
                j = 0
        for _ in range(_N - 1):
            prev = mt[i - 1]
            mt[i] = ((mt[i] ^ ((prev ^ (prev >> 30)) * 1566083941)) - i) & _MASK
            i += 1
            if i >= _N:
                mt[0] = mt[_N - 1]
                i = 1
        mt[0] = _UPPER
        self._index = _N

    def _twist(self) -> None:
        mt = self._mt
        for k in range(_N):
            y = (mt[k] & _UPPER) | (mt[(k + 1) % _N] & _LOWER)
            mt[k] = mt[(k + _M) % _N] ^ (y >> 1) ^ (_MATRIX_A if y & 1 else 0)
        self._index = 0

    def next_bits(self, bits: int) -> int:
        """``next(bits)``: the top ``bits`` bits of the next tempered 32-bit output (unsigned)."""
        if self._index >= _N:
            self._twist()
        y = self._mt[self._index]
        self._index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        return y >> (32 - bits)

    def next_int(self) -> int:
        """``nextInt()``: the full 32-bit output as a signed Java int."""
        y = self.next_bits(32)
        return y - (1 << 32) if y & _UPPER else y

    def next_double(self) -> float:
        high = self.next_bits(26) << 26
        return (high | self.next_bits(26)) * 2.0**-52

    def next_gaussian(self) -> float:
        if self._gaussian is not None:
            value, self._gaussian = self._gaussian, None
            return value
        x = self.next_double()
        y = self.next_double()
        alpha = 2 * math.pi * x
        r = math.sqrt(-2 * _log(y))
        self._gaussian = r * math.sin(alpha)
        return r * math.cos(alpha)


def _log(x: float) -> float:
    """Java's ``log``: -Infinity at 0 (Python raises)."""
    return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)


def gamma_samples(shape: float, scale: float, n: int, seed: int) -> list[float]:
    """``new Gamma(shape, scale)(new RandBasis(new MersenneTwister(seed))).samplesVector(n)``."""
    if not (shape > 0 and scale > 0):
        raise ValueError(f"Gamma shape and scale must be positive, got {shape} and {scale}")
    rng = MersenneTwister(seed)
    return [_gamma_draw(rng, shape, scale) for _ in range(n)]


def _gamma_draw(rng: MersenneTwister, shape: float, scale: float) -> float:
    if shape == 1.0:
        return scale * -_log(rng.next_double())
    if shape < 1.0:
        while True:
            u = rng.next_double()
            v = -_log(rng.next_double())
            if u <= 1.0 - shape:
                x = u ** (1.0 / shape)
                if x <= v:
                    return scale * x
            else:
                y = -_log((1 - u) / shape)
                x = (1.0 - shape + shape * y) ** (1.0 / shape)
                if x <= v + y:
                    return scale * x
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        while True:
            x = rng.next_gaussian()
            v = 1.0 + c * x
            if not v <= 0:
                break
        v = v * v * v
        x2 = x * x
        u = rng.next_double()
        if u < 1.0 - 0.0331 * (x2 * x2) or _log(u) < 0.5 * x2 + d * (1.0 - v + _log(v)):
            return scale * d * v
