"""LocalLDAModel (``ml/clustering/LDA.scala``, ``mllib/clustering/LDAOptimizer.scala``): topicDistribution.

Spark infers each document's topic mixture by variational inference (Hoffman et al.'s online LDA):

- At load: ``expElogbeta = exp(digamma(λ) − digamma(Σ_w λ))`` per topic, λ the saved
  ``topicsMatrix`` (vocabSize × k, one column per topic; the sum runs over the vocabulary in order).
- Per document with term counts ``c`` at ids ``w`` (a sparse vector's stored entries, every index of a
  dense one): start from ``γ`` = k draws of Gamma(gammaShape, 1/gammaShape) (see
  :mod:`modelport.runtimes.sparkml.jvm_random`), ``θ = exp(E[log θ])`` with
  ``E[log θ] = digamma(γ) − digamma(Σγ)``, ``φ = expElogbeta[w] θ + 1e-100``; then repeat
  ``γ ← θ ⊙ (expElogbeta[w]ᵀ (c / φ)) + α``, recompute θ and φ, until the mean absolute change of
  γ is at most 1e-3 (at least once; a NaN change stops). The answer is ``γ / Σ|γ|``.
- A document with no non-zero count gives the zero vector.

digamma is commons-math3's ``Gamma.digamma`` (what breeze calls), not the exact function: below 49
it recurses ``ψ(x) = ψ(x + 1) − 1/x`` and above uses a 4-term asymptotic series, which is ~5e-8 away
from the true ψ, so a textbook digamma would not give Spark's numbers.

The seed. Every document's generator is seeded with the *mllib* model's seed, which
``ml.clustering.LocalLDAModel``'s constructor sets from the ml model's ``seed`` param before that
param is read from the saved metadata (or copied from the estimator after ``fit``), so it is always
the param's default: ``"org.apache.spark.ml.clustering.LocalLDAModel".hashCode``. The saved ``seed``
(the one training used) does not change the answer; the tests check this against Spark.

DistributedLDAModel (optimizer "em") is refused: Spark's transform goes through ``toLocal``, whose
mllib model is seeded from an unseeded ``java.util.Random``, so Spark itself gives different topic
distributions each time the model is loaded; there is no one answer to reproduce. Its
``toLocal()`` saved with ``write().save()`` is a LocalLDAModel and is served.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.jvm_random import gamma_samples, java_string_hash
from modelport.runtimes.sparkml.models._base import PredictorStage
from modelport.runtimes.sparkml.reader import StageMeta, dense_vector, matrix, read_data
from modelport.runtimes.sparkml.stage import Frame, refuse, register
from modelport.runtimes.sparkml.vectors import SparseRow, invalid

__all__ = ["LocalLDAModel", "digamma", "topic_distributions"]

_LOCAL = "org.apache.spark.ml.clustering.LocalLDAModel"
_DISTRIBUTED = "org.apache.spark.ml.clustering.DistributedLDAModel"
SPARK_SEED = java_string_hash(_LOCAL)
"""The seed Spark's transform uses for every LocalLDAModel (see the module docstring)."""

_EULER = 0.577215664901532860606512090082  # commons-math3 Gamma.GAMMA
_SMALL = 1e-5  # below: ψ(x) ≈ -γ - 1/x
_LARGE = 49.0  # from here: the asymptotic series
_MAX_STEPS = 1 << 16  # recursion depth past which the JVM would run out of stack: refuse instead
_CONVERGED = 1e-3


def digamma(x: np.ndarray) -> np.ndarray:
    """commons-math3 ``Gamma.digamma`` elementwise, in its order of operations.

    The recursion ``ψ(x) = ψ(x + 1) − 1/x`` unrolls to ``ψ(x + n) − 1/(x + n − 1) − … − 1/x``: the
    arguments are built by adding 1 again and again (as the recursion does), and the reciprocals
    are subtracted from the deepest level back.
    """
    arr = np.asarray(x, dtype=np.float64)
    flat = arr.ravel()
    out = np.empty_like(flat)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        special = np.isnan(flat) | np.isinf(flat)
        out[special] = flat[special]
        small = (flat > 0) & (flat <= _SMALL)
        out[small] = -_EULER - 1 / flat[small]
        large = flat >= _LARGE
        out[large] = _asymptotic(flat[large])
        middle = np.flatnonzero((flat > _SMALL) & (flat < _LARGE))
        for lo in range(0, middle.size, _CHUNK):
            where = middle[lo : lo + _CHUNK]
            out[where] = _recurse(flat[where])
        rest = np.flatnonzero(~special & (flat <= 0))
        for i in rest:
            out[i] = _digamma_scalar(float(flat[i]))
    return out.reshape(arr.shape)


_CHUNK = 1 << 15
_LEVELS = 50  # from x > 1e-5, 49 additions of 1 reach 49


def _asymptotic(c: np.ndarray) -> np.ndarray:
    """The series for x >= 49. The log is ``math.log`` (glibc): numpy's SIMD log is 1 ulp off more often
    than glibc is off commons-math3's ``FastMath.log`` (measured: 24 vs 13 of 200,000 arguments)."""
    inv = 1 / (c * c)
    logs = np.fromiter(map(math.log, c.tolist()), dtype=np.float64, count=c.size)
    out: np.ndarray = logs - 0.5 / c - inv * ((1.0 / 12) + inv * (1.0 / 120 - inv / 252))
    return out


def _recurse(x: np.ndarray) -> np.ndarray:
    """ψ for 1e-5 < x < 49: every level at once, the sums and differences still in the JVM's order."""
    steps = np.ones((_LEVELS, x.size))
    steps[0] = x
    args = np.cumsum(steps, axis=0)  # x, x+1, (x+1)+1, ...: one addition at a time, as the recursion
    depth = (args < _LARGE).sum(axis=0)  # levels before the series takes over
    base = _asymptotic(args[depth, np.arange(x.size)])
    terms = np.where(np.arange(_LEVELS)[:, None] < depth[None, :], 1 / args, 0.0)  # subtracting 0 changes nothing
    rows = np.concatenate([base[None, :], terms[::-1]])
    result: np.ndarray = np.subtract.reduce(rows, axis=0)  # base - deepest - ... - 1/x, in that order
    return result


def _digamma_scalar(x: float) -> float:
    """The recursion for one number (x <= 0, where levels may be many or meet the small-x branch)."""
    terms: list[float] = []
    while True:
        if math.isnan(x) or math.isinf(x):
            value = x
            break
        if 0 < x <= _SMALL:
            value = -_EULER - 1 / x
            break
        if x >= _LARGE:
            value = float(_asymptotic(np.array([x]))[0])
            break
        if len(terms) >= _MAX_STEPS:
            raise ValueError("digamma of a number below -65536 (Spark's recursion would overflow its stack)")
        terms.append(1 / x if x != 0 else math.copysign(math.inf, x))
        x += 1
    for term in reversed(terms):
        value -= term
    return value


def _seq_sum_cols(a: np.ndarray) -> np.ndarray:
    """Row sums of ``(rows, k)`` adding column 0, 1, ... in turn (breeze's left-to-right ``sum``)."""
    total = a[:, 0].copy()
    for j in range(1, a.shape[1]):
        total += a[:, j]
    return total


def _exp_elog(gamma: np.ndarray) -> np.ndarray:
    """``exp(digamma(γ) − digamma(Σγ))`` per row (LDAUtils.dirichletExpectation, then exp)."""
    both = digamma(np.concatenate([gamma, _seq_sum_cols(gamma)[:, None]], axis=1))  # one pass for γ and Σγ
    out: np.ndarray = np.exp(both[:, :-1] - both[:, -1:])
    return out


def exp_elog_beta(topics: np.ndarray) -> np.ndarray:
    """``(vocabSize, k)`` ``exp(E[log β])`` from the saved topicsMatrix (columns are topics)."""
    topics = np.ascontiguousarray(topics, dtype=np.float64)
    totals = np.add.reduce(topics, axis=0)  # over axis 0 of a C array numpy adds row after row
    with np.errstate(over="ignore", invalid="ignore"):
        out: np.ndarray = np.exp(digamma(topics) - digamma(totals)[None, :])
    return out


def topic_distributions(
    ids: np.ndarray, counts: np.ndarray, indptr: np.ndarray, beta: np.ndarray, alpha: np.ndarray, gamma0: np.ndarray
) -> np.ndarray:
    """Spark's ``topicDistribution`` for documents given as CSR parts (entries of doc d in ``indptr[d:d+2]``).

    All documents iterate together; a document leaves the batch when it converges, as Spark's
    per-document loop would stop there.
    """
    n, k = len(indptr) - 1, beta.shape[1]
    out = np.zeros((n, k), dtype=np.float64)
    lengths = np.diff(indptr)
    docs = np.flatnonzero(lengths > 0)
    if not docs.size:
        return out
    theta0 = _exp_elog(gamma0[None, :])[0]
    gamma = np.tile(gamma0, (docs.size, 1))
    theta = np.tile(theta0, (docs.size, 1))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while docs.size:
            sel = np.concatenate([np.arange(indptr[d], indptr[d + 1]) for d in docs])
            ptr = np.concatenate([[0], np.cumsum(lengths[docs])])
            b = beta[ids[sel]]
            c = counts[sel]
            owner = np.repeat(np.arange(docs.size), lengths[docs])
            # doc d's row holds c/φ at its own entries: the product adds them entry after entry (dgemv's order)
            weights = sp.csr_matrix((c.copy(), np.arange(sel.size), ptr), shape=(docs.size, sel.size))
            while True:
                phi = _phi_norm(b, theta[owner])
                np.divide(c, phi, out=weights.data)
                last = gamma
                gamma = theta * np.asarray(weights @ b) + alpha
                theta = _exp_elog(gamma)
                change = _seq_sum_cols(np.abs(gamma - last)) / k
                going = change > _CONVERGED
                if not going.all():
                    break
            done = ~going
            out[docs[done]] = _normalize(gamma[done])
            docs, gamma, theta = docs[going], gamma[going], theta[going]
    return out


def _phi_norm(b: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``expElogbeta[ids] θ + 1e-100`` with the products added topic after topic (BLAS dgemv's order)."""
    phi = b[:, 0] * theta[:, 0]
    for j in range(1, b.shape[1]):
        phi += b[:, j] * theta[:, j]
    result: np.ndarray = phi + 1e-100
    return result


def _normalize(gamma: np.ndarray) -> np.ndarray:
    """breeze ``normalize(γ, 1.0)``: γ / Σ|γ|, γ itself where that norm is 0."""
    norm = _seq_sum_cols(np.abs(gamma))
    safe = np.where(norm == 0, 1.0, norm)
    out: np.ndarray = np.where((norm == 0)[:, None], gamma, gamma / safe[:, None])
    return out


@register
class LocalLDAModel(PredictorStage):
    spark_classes = (_LOCAL,)
    output_params: ClassVar[tuple[tuple[str, str], ...]] = (("topicDistributionCol", "topicDistribution"),)
    vector_params = frozenset({"topicDistributionCol"})

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        try:
            row = table.slice(0, 1).to_pylist()[0]
            topics = matrix(row["topicsMatrix"])
            alpha = dense_vector(row["docConcentration"])
            self.gamma_shape = float(row["gammaShape"])
            vocab = int(row["vocabSize"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{meta.path}: unreadable LocalLDAModel data ({exc!r})") from None
        self.num_features, self.k = topics.shape
        if self.num_features != vocab or self.k == 0:
            raise ModelLoadError(
                f"{meta.path}: LocalLDAModel topicsMatrix is {topics.shape}, expected (vocabSize {vocab}, k > 0)"
            )
        if alpha.shape != (self.k,):
            raise ModelLoadError(
                f"{meta.path}: LocalLDAModel docConcentration has {alpha.size} values for k = {self.k} topics"
            )
        if not self.gamma_shape > 0:
            raise ModelLoadError(f"{meta.path}: LocalLDAModel gammaShape {self.gamma_shape} is not positive")
        self.vector_size = self.k
        self.alpha = alpha
        self.beta = exp_elog_beta(topics)
        self.gamma0 = np.asarray(gamma_samples(self.gamma_shape, 1.0 / self.gamma_shape, self.k, SPARK_SEED))

    def _documents(self, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ids, counts and row pointers Spark iterates over: a sparse row's stored entries, a dense row's non-zeros.

        Zero counts add exact zeros to Spark's sums, so leaving them out of a dense row changes nothing.
        """
        if sp.issparse(x):
            csr = sp.csr_matrix(x)
            csr.sort_indices()
            keep = csr.data != 0
            if not keep.all():
                csr = sp.csr_matrix((csr.data * keep, csr.indices, csr.indptr), shape=csr.shape)
                csr.eliminate_zeros()
            return csr.indices.astype(np.int64), csr.data.astype(np.float64), csr.indptr.astype(np.int64)
        rows, cols = np.nonzero(x != 0)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=x.shape[0]))])
        return cols.astype(np.int64), x[rows, cols].astype(np.float64), indptr

    def _infer(self, x: Any) -> np.ndarray:
        ids, counts, indptr = self._documents(x)
        negative = np.flatnonzero(counts < 0)
        if negative.size:
            row = int(np.searchsorted(indptr, negative[0], side="right") - 1)
            raise invalid(
                f"LocalLDAModel ({self.meta.uid})",
                self.features_col,
                f"row {row} has a negative term count ({float(counts[negative[0]])!r}); LDA reads word counts (>= 0)",
            )
        return topic_distributions(ids, counts, indptr, self.beta, self.alpha, self.gamma0)

    def transform(self, frame: Frame) -> None:
        col = self.col("topicDistributionCol")
        if col:
            frame[col] = self._infer(self.features(frame))

    def row(self, values: dict[str, Any]) -> bool:
        x = self.row_features(values)
        if x is None:
            return False
        if isinstance(x, SparseRow):
            ids, counts = np.asarray(x.indices, dtype=np.int64), np.asarray(x.values, dtype=np.float64)
            keep = counts != 0
            ids, counts = ids[keep], counts[keep]
        else:
            dense = np.asarray(x, dtype=np.float64)
            ids = np.flatnonzero(dense != 0)
            counts = dense[ids]
        if (counts < 0).any():
            return False  # the frame path words the error
        col = self.col("topicDistributionCol")
        if col:
            indptr = np.array([0, ids.size], dtype=np.int64)
            values[col] = topic_distributions(ids, counts, indptr, self.beta, self.alpha, self.gamma0)[0].tolist()
        return True

    def summary(self) -> str:
        alpha = ", ".join(f"{a:.4g}" for a in self.alpha[:3]) + (", ..." if self.k > 3 else "")
        return f"k={self.k}, vocabSize={self.num_features}, docConcentration=[{alpha}]"


refuse(
    _DISTRIBUTED,
    "Spark's own transform of a DistributedLDAModel (optimizer 'em') starts each document from a randomly "
    "seeded vector that changes every time the model is loaded, so there is no one answer to reproduce; "
    "save model.toLocal() (a LocalLDAModel, which is supported) and serve that",
)
