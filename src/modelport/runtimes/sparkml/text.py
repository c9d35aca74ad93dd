"""Text stages: tokenizers, stop words, n-grams and term-frequency vectorisers.

Each follows the Spark source it names (``ml/feature/<Name>.scala``). RegexTokenizer
patterns are ``java.util.regex`` patterns, translated construct by construct (or refused at
load) by :mod:`modelport.runtimes.sparkml.java_regex`; lower-casing is Java's ``toLowerCase``
(:mod:`modelport.runtimes.sparkml.java_case`).
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from itertools import chain
from typing import Any, ClassVar

import mmh3
import numpy as np
import scipy.sparse as sp

from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.java_case import java_lower, locale_lower
from modelport.runtimes.sparkml.java_regex import UnsupportedRegex, compile_java, java_find_all, java_split
from modelport.runtimes.sparkml.reader import StageMeta, read_data
from modelport.runtimes.sparkml.stage import ColumnInfo, Frame, Schema, Stage, param_or, register
from modelport.runtimes.sparkml.vectors import DENSE_LIMIT, SparseRow, sparse_rows, to_dense

__all__ = [
    "CountVectorizerModel",
    "FeatureHasher",
    "HashingTF",
    "IDFModel",
    "NGram",
    "StopWordsRemover",
    "Tokenizer",
    "murmur3_spark2",
]

_SPARK = "org.apache.spark.ml.feature."
TOKENS_SPEC: tuple[str, tuple[int, ...]] = ("BYTES", (-1, -1))
"""A pipeline input holding token lists (``array<string>``): one row of strings per request row, right-padded
with null when rows differ in length."""


def _java_len(s: str) -> int:
    """String length in UTF-16 code units, as Java counts it."""
    return len(s) if s.isascii() else len(s.encode("utf-16-le")) // 2


class _TextStage(Stage):
    """A one-column-in, one-column-out stage over strings or string arrays."""

    null_message = "is null; Spark fails the whole job on a null here"
    row_input: ClassVar[type] = str

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.in_col = self.inputs[0]
        self.out_col = self.outputs[0]
        self.name = f"{meta.short_class} ({meta.uid})"

    def input_datatype(self, column: str) -> str:
        return "BYTES"

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "BYTES", (-1, -1)

    def setup(self, schema: Schema) -> None:
        schema[self.out_col] = ColumnInfo("tokens")

    def _null(self, value: Any) -> Exception:
        from modelport.runtimes.sparkml.vectors import invalid

        return invalid(self.name, self.in_col, f"value {value!r} {self.null_message}")

    def fn(self, value: Any) -> list[str]:
        """The stage on one value (a string or a token list)."""
        raise NotImplementedError

    def transform(self, frame: Frame) -> None:
        col = frame[self.in_col]
        fn = self.fn
        try:
            out = [fn(v) for v in col]
        except (AttributeError, TypeError):
            bad = next(v for v in col if not isinstance(v, str | list))
            raise self._null(bad) from None
        arr = np.empty(len(out), dtype=object)
        arr[:] = out
        frame[self.out_col] = arr

    def row(self, values: dict[str, Any]) -> bool:
        v = values[self.in_col]
        if not isinstance(v, self.row_input):
            return False  # null or odd values: the frame path names them in its error
        values[self.out_col] = self.fn(v)
        return True


def _tokenize(s: str, split: Any = re.compile(r"\s", re.ASCII).split) -> list[str]:
    """Spark's Tokenizer on one string: lower-case, split on each whitespace character, drop trailing empties."""
    s = java_lower(s)
    if "\t" in s or "\n" in s or "\r" in s or "\x0b" in s or "\x0c" in s:
        parts: list[str] = split(s)
    else:
        parts = s.split(" ")  # the same as splitting on \s when space is the only whitespace
    if len(parts) > 1 and not parts[-1]:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


@register
class Tokenizer(_TextStage):
    """Lower-case, then split on each single whitespace character (so runs of spaces give empty tokens)."""

    spark_classes = (_SPARK + "Tokenizer",)

    def fn(self, value: Any) -> list[str]:
        return _tokenize(value)

    def row(self, values: dict[str, Any]) -> bool:
        v = values[self.in_col]
        if not isinstance(v, str):
            return False
        values[self.out_col] = _tokenize(v)
        return True

    def transform(self, frame: Frame) -> None:
        col = frame[self.in_col]
        try:
            out = list(map(_tokenize, col))
        except (AttributeError, TypeError):
            bad = next(v for v in col if not isinstance(v, str | list))
            raise self._null(bad) from None
        arr = np.empty(len(out), dtype=object)
        arr[:] = out
        frame[self.out_col] = arr


@register
class RegexTokenizer(_TextStage):
    """Split on ``pattern`` (gaps) or collect its matches, then drop tokens shorter than minTokenLength."""

    spark_classes = (_SPARK + "RegexTokenizer",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        pattern = str(param_or(meta, "pattern", r"\s+"))
        try:
            self.pattern = compile_java(pattern)
        except UnsupportedRegex as exc:
            raise ModelLoadError(
                f"{meta.path}: RegexTokenizer ({meta.uid}) pattern {pattern!r} uses a Java regex construct modelport "
                f"cannot run exactly: {exc}; rewrite the pattern without it"
            ) from None
        except re.error as exc:
            raise ModelLoadError(
                f"{meta.path}: RegexTokenizer ({meta.uid}) pattern {pattern!r} is not usable here: {exc}"
            ) from None
        self.gaps = bool(param_or(meta, "gaps", True))
        self.min_length = int(param_or(meta, "minTokenLength", 1))
        self.lowercase = bool(param_or(meta, "toLowercase", True))

    def fn(self, value: Any) -> list[str]:
        s = java_lower(value) if self.lowercase else value
        min_len = self.min_length
        tokens = java_split(self.pattern, s) if self.gaps else java_find_all(self.pattern, s)
        return [t for t in tokens if _java_len(t) >= min_len] if min_len > 0 else tokens


@register
class StopWordsRemover(Stage):
    """Drop the saved ``stopWords``; case-insensitive unless caseSensitive (single or multi column)."""

    spark_classes = (_SPARK + "StopWordsRemover",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        words = [str(w) for w in (meta.get("stopWords") or [])]
        self.case_sensitive = bool(param_or(meta, "caseSensitive", False))
        try:
            self.lower = locale_lower(str(param_or(meta, "locale", "en_US")))
        except ValueError as exc:
            raise ModelLoadError(f"{meta.path}: StopWordsRemover ({meta.uid}): {exc}") from None
        self.words = frozenset(words if self.case_sensitive else (self.lower(w) for w in words))
        self.name = f"StopWordsRemover ({meta.uid})"

    def input_datatype(self, column: str) -> str:
        return "BYTES"

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return TOKENS_SPEC

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "BYTES", (-1, -1)

    def setup(self, schema: Schema) -> None:
        for col in self.outputs:
            schema[col] = ColumnInfo("tokens")

    def _remove(self, tokens: Any) -> list[str] | None:
        words = self.words
        if tokens is None:
            return None
        if self.case_sensitive:
            return [t for t in tokens if t not in words]
        lower = self.lower
        return [t for t in tokens if t is None or lower(t) not in words]

    def transform(self, frame: Frame) -> None:
        for src, dst in zip(self.inputs, self.outputs, strict=True):
            col = frame[src]
            out = np.empty(len(col), dtype=object)
            for i, tokens in enumerate(col):
                out[i] = self._remove(tokens)
            frame[dst] = out

    def row(self, values: dict[str, Any]) -> bool:
        for src, dst in zip(self.inputs, self.outputs, strict=True):
            tokens = values[src]
            if tokens is not None and not isinstance(tokens, list):
                return False
            values[dst] = self._remove(tokens)
        return True


@register
class NGram(_TextStage):
    """Space-joined runs of n consecutive tokens; fewer than n tokens give none."""

    spark_classes = (_SPARK + "NGram",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.n = int(param_or(meta, "n", 2))

    row_input = list

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return TOKENS_SPEC

    def fn(self, value: Any) -> list[str]:
        n = self.n
        return [" ".join(value[i : i + n]) for i in range(len(value) - n + 1)]


def murmur3_spark2(data: bytes, seed: int = 42) -> int:
    """Spark < 3's ``Murmur3_x86_32.hashUnsafeBytes``: each tail byte (sign-extended) is mixed as its own block.

    It is not standard MurmurHash3, so models saved by Spark 2 need it to find the same buckets.
    """
    mask = 0xFFFFFFFF

    def mix_k1(k1: int) -> int:
        k1 = (k1 * 0xCC9E2D51) & mask
        k1 = ((k1 << 15) | (k1 >> 17)) & mask
        return (k1 * 0x1B873593) & mask

    def mix_h1(h1: int, k1: int) -> int:
        h1 ^= k1
        h1 = ((h1 << 13) | (h1 >> 19)) & mask
        return (h1 * 5 + 0xE6546B64) & mask

    h1 = seed & mask
    aligned = len(data) - len(data) % 4
    for i in range(0, aligned, 4):
        h1 = mix_h1(h1, mix_k1(int.from_bytes(data[i : i + 4], "little")))
    for b in data[aligned:]:
        h1 = mix_h1(h1, mix_k1((b - 256 if b > 127 else b) & mask))
    h1 ^= len(data)
    h1 ^= h1 >> 16
    h1 = (h1 * 0x85EBCA6B) & mask
    h1 ^= h1 >> 13
    h1 = (h1 * 0xC2B2AE35) & mask
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def _hash3(term: str) -> int:
    return int(mmh3.hash(term, 42))


def _hash2(term: str) -> int:
    return murmur3_spark2(term.encode("utf-8"))


class _VectorOut(Stage):
    """A stage whose single output is a vector of a known size."""

    size: int = -1

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "FP64", (-1, self.size)

    def setup(self, schema: Schema) -> None:
        for col in self.outputs:
            schema[col] = ColumnInfo("vector", self.size if self.size > 0 else None)


def _tf_vectors(n: int, size: int, cols: np.ndarray, lengths: list[int], binary: bool) -> Any:
    """Term counts per row from each row's bucket indices (``lengths`` of them per row, in row order)."""
    if n * size <= DENSE_LIMIT:
        rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
        counts = np.bincount(rows * size + cols, minlength=n * size).reshape(n, size)
        return (counts > 0).astype(np.float64) if binary else counts.astype(np.float64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    out = sp.csr_matrix((np.ones(len(cols)), cols, indptr), shape=(n, size))
    out.sum_duplicates()  # sorts each row's indices and adds up repeated terms, in C
    if binary:
        out.data[:] = 1.0
    return out


_CACHE_LIMIT = 100_000
"""Distinct terms a HashingTF remembers the bucket of; past it the table starts afresh."""


@register
class HashingTF(_VectorOut):
    """Term frequencies at ``nonNegativeMod(murmur3(term, 42), numFeatures)``; Spark < 3 models use the old hash.

    Buckets are remembered per term (up to :data:`_CACHE_LIMIT` terms): documents repeat words,
    and a dict lookup is cheaper than hashing again.
    """

    spark_classes = (_SPARK + "HashingTF",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.size = int(param_or(meta, "numFeatures", 1 << 18))
        self.binary = bool(param_or(meta, "binary", False))
        self.hash = _hash2 if meta.spark_version[0] < 3 else _hash3
        self.in_col, self.out_col = self.inputs[0], self.outputs[0]
        self.name = f"HashingTF ({meta.uid})"
        # Replaced (never cleared in place) when full, so a concurrent reader keeps a whole table.
        self._buckets: dict[str, int] = {}

    def input_datatype(self, column: str) -> str:
        return "BYTES"

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return TOKENS_SPEC

    def _table(self, terms: list[str]) -> dict[str, int]:
        """A term -> bucket table that holds every term in ``terms``."""
        table = self._buckets
        missing = set(terms).difference(table)
        if not missing:
            return table
        if len(table) + len(missing) > _CACHE_LIMIT:
            table = {}
            missing = set(terms)
            if len(missing) <= _CACHE_LIMIT:
                self._buckets = table
        size = self.size
        if self.hash is _hash3:
            mh = mmh3.hash
            for t in missing:
                table[t] = mh(t, 42) % size
        else:
            h = self.hash
            for t in missing:
                table[t] = h(t) % size
        return table

    def transform(self, frame: Frame) -> None:
        col = frame[self.in_col]
        n = len(col)
        lengths = [len(tokens) if tokens is not None else -1 for tokens in col]
        if -1 in lengths:
            raise self._null()
        total = sum(lengths)
        table = self._buckets
        try:  # known terms: straight from the token lists into the index array
            cols = np.fromiter(map(table.__getitem__, chain.from_iterable(col)), dtype=np.int64, count=total)
        except KeyError:
            table = self._table(list(chain.from_iterable(col)))
            cols = np.fromiter(map(table.__getitem__, chain.from_iterable(col)), dtype=np.int64, count=total)
        frame[self.out_col] = _tf_vectors(n, self.size, cols, lengths, self.binary)

    def row(self, values: dict[str, Any]) -> bool:
        tokens = values[self.in_col]
        if not isinstance(tokens, list):
            return False
        table = self._buckets
        try:
            buckets = list(map(table.__getitem__, tokens))
        except KeyError:
            buckets = list(map(self._table(tokens).__getitem__, tokens))
        buckets.sort()
        # Run lengths of the sorted buckets (lists only: cheaper than a dict for a document's few terms).
        indices: list[int] = []
        tf: list[float] = []
        add_index, add_tf = indices.append, tf.append
        prev = -1
        for b in buckets:
            if b == prev:
                tf[-1] += 1.0
            else:
                add_index(b)
                add_tf(1.0)
                prev = b
        if self.binary:
            tf = [1.0] * len(indices)
        values[self.out_col] = SparseRow(self.size, indices, tf)
        return True

    def _null(self) -> Exception:
        from modelport.runtimes.sparkml.vectors import invalid

        return invalid(self.name, self.in_col, "null token array")


@register
class CountVectorizerModel(_VectorOut):
    """Counts of vocabulary terms; a term is kept when its count reaches minTF (absolute, or × token count)."""

    spark_classes = (_SPARK + "CountVectorizerModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        table = read_data(meta.path)
        vocab = table.column("vocabulary")[0].as_py()
        self.vocab = {str(t): i for i, t in enumerate(vocab)}
        self.size = len(vocab)
        self.min_tf = float(param_or(meta, "minTF", 1.0))
        self.binary = bool(param_or(meta, "binary", False))
        self.in_col, self.out_col = self.inputs[0], self.outputs[0]
        self.name = f"CountVectorizerModel ({meta.uid})"

    def input_datatype(self, column: str) -> str:
        return "BYTES"

    def input_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return TOKENS_SPEC

    def transform(self, frame: Frame) -> None:
        col = frame[self.in_col]
        vocab, min_tf = self.vocab, self.min_tf
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for i, tokens in enumerate(col):
            if tokens is None:
                from modelport.runtimes.sparkml.vectors import invalid

                raise invalid(self.name, self.in_col, "null token array")
            counts = Counter(vocab[t] for t in tokens if t in vocab)
            threshold = min_tf if min_tf >= 1.0 else min_tf * len(tokens)
            for idx, c in counts.items():
                if c >= threshold:
                    rows.append(i)
                    cols.append(idx)
                    vals.append(1.0 if self.binary else float(c))
        frame[self.out_col] = sparse_rows(
            np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), np.asarray(vals), len(col), self.size
        )

    def row(self, values: dict[str, Any]) -> bool:
        tokens = values[self.in_col]
        if not isinstance(tokens, list):
            return False
        vocab, min_tf = self.vocab, self.min_tf
        counts = Counter([vocab[t] for t in tokens if t in vocab])
        threshold = min_tf if min_tf >= 1.0 else min_tf * len(tokens)
        indices = sorted(i for i, c in counts.items() if c >= threshold)
        tf = [1.0] * len(indices) if self.binary else [float(counts[i]) for i in indices]
        values[self.out_col] = SparseRow(self.size, indices, tf)
        return True


@register
class IDFModel(_VectorOut):
    """Scales each term frequency by its saved idf; sparse inputs stay sparse."""

    spark_classes = (_SPARK + "IDFModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        from modelport.runtimes.sparkml.reader import dense_vector

        table = read_data(meta.path)
        self.idf = dense_vector(table.column("idf")[0].as_py())
        self.idf_list: list[float] = self.idf.tolist()
        self.size = len(self.idf)
        self.in_col, self.out_col = self.inputs[0], self.outputs[0]

    def transform(self, frame: Frame) -> None:
        col = frame[self.in_col]
        if isinstance(col, np.ndarray):
            frame[self.out_col] = (col if col.ndim == 2 else to_dense(col)) * self.idf
        else:
            out = col.copy()
            out.data = out.data * self.idf[out.indices]
            frame[self.out_col] = out

    def row(self, values: dict[str, Any]) -> bool:
        v = values[self.in_col]
        idf = self.idf_list
        if isinstance(v, SparseRow):
            if v.size != self.size:
                return False
            values[self.out_col] = SparseRow(
                v.size, v.indices, list(map(operator.mul, v.values, map(idf.__getitem__, v.indices)))
            )
        elif isinstance(v, list) and len(v) == self.size:
            values[self.out_col] = [x * w for x, w in zip(v, idf, strict=True)]
        else:
            return False
        return True


@register
class FeatureHasher(_VectorOut):
    """Hashes numbers by column name (value added) and strings/booleans/categoricalCols as ``name=value`` (1.0).

    Nulls add nothing; a NaN number adds NaN, as in Spark. The saved model does not say which
    source columns were text, so they are typed BYTES and each value is hashed by its own kind:
    a JSON string as a category, a JSON number as a number, true/false as a boolean.
    """

    spark_classes = (_SPARK + "FeatureHasher",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.size = int(param_or(meta, "numFeatures", 1 << 18))
        self.categorical = set(meta.get("categoricalCols") or [])
        self.name = f"FeatureHasher ({meta.uid})"

    def input_datatype(self, column: str) -> str:
        return "BYTES"

    def _column(self, name: str, col: np.ndarray, acc: dict[tuple[int, int], float]) -> None:
        from modelport.runtimes.sparkml.vectors import java_double_str, null_mask

        size = self.size
        categorical = name in self.categorical
        name_bucket = _hash3(name) % size
        nulls = null_mask(col).tolist() if col.dtype.kind in "fO" else [False] * len(col)
        for i, (v, null) in enumerate(zip(col.tolist(), nulls, strict=True)):
            if null:
                continue  # Spark skips a null cell
            if isinstance(v, str | bool) or categorical:
                if isinstance(v, bool):
                    text = "true" if v else "false"
                elif isinstance(v, float):
                    text = java_double_str(v)
                else:
                    text = str(v)
                key = (i, _hash3(f"{name}={text}") % size)
                acc[key] = acc.get(key, 0.0) + 1.0
            elif isinstance(v, int | float):
                key = (i, name_bucket)
                acc[key] = acc.get(key, 0.0) + float(v)
            else:
                from modelport.runtimes.sparkml.vectors import invalid

                raise invalid(self.name, name, f"value {v!r} is neither a string, a number nor a boolean")

    def transform(self, frame: Frame) -> None:
        acc: dict[tuple[int, int], float] = {}
        for name in self.inputs:
            self._column(name, frame[name], acc)
        rows = np.fromiter((k[0] for k in acc), dtype=np.int64, count=len(acc))
        cols = np.fromiter((k[1] for k in acc), dtype=np.int64, count=len(acc))
        vals = np.fromiter(acc.values(), dtype=np.float64, count=len(acc))
        frame[self.outputs[0]] = sparse_rows(rows, cols, vals, frame.n, self.size)
