"""Text stages: tokenizers, stop words, n-grams and term-frequency vectorisers.

Each follows the Spark source it names (``ml/feature/<Name>.scala``). Java's regex
``\\s`` and ``\\w`` are ASCII-only, so patterns compile with ``re.ASCII``; Java's
``String.split`` drops trailing empty strings, which :func:`_java_split` mirrors.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import chain
from typing import Any

import mmh3
import numpy as np

from modelport.errors import ModelLoadError
from modelport.sparkml.reader import StageMeta, read_data
from modelport.sparkml.stage import ColumnInfo, Frame, Schema, Stage, param_or, register
from modelport.sparkml.vectors import sparse_rows, to_dense

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


def _java_split(pattern: re.Pattern[str], text: str) -> list[str]:
    """``String.split(regex)``: no match gives ``[text]``; trailing empty strings are removed."""
    parts = pattern.split(text)
    if len(parts) == 1:
        return parts
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _java_len(s: str) -> int:
    """String length in UTF-16 code units, as Java counts it."""
    return len(s) if s.isascii() else len(s.encode("utf-16-le")) // 2


def _lower(s: str) -> str:
    return s.lower()


class _TextStage(Stage):
    """A one-column-in, one-column-out stage over strings or string arrays."""

    null_message = "is null; Spark fails the whole job on a null here"

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
        from modelport.sparkml.vectors import invalid

        return invalid(self.name, self.in_col, f"value {value!r} {self.null_message}")

    def _apply(self, frame: Frame, fn: Any) -> None:
        col = frame[self.in_col]
        try:
            out = [fn(v) for v in col]
        except (AttributeError, TypeError):
            bad = next(v for v in col if not isinstance(v, str | list))
            raise self._null(bad) from None
        arr = np.empty(len(out), dtype=object)
        arr[:] = out
        frame[self.out_col] = arr


@register
class Tokenizer(_TextStage):
    """Lower-case, then split on each single whitespace character (so runs of spaces give empty tokens)."""

    spark_classes = (_SPARK + "Tokenizer",)
    _ws = re.compile(r"\s", re.ASCII)

    def transform(self, frame: Frame) -> None:
        split = self._ws.split

        def tok(s: str) -> list[str]:
            s = s.lower()
            if "\t" in s or "\n" in s or "\r" in s or "\x0b" in s or "\x0c" in s:
                parts = split(s)
            else:
                parts = s.split(" ")  # the same as splitting on \s when space is the only whitespace
            if len(parts) > 1:
                while parts and parts[-1] == "":
                    parts.pop()
            return parts

        self._apply(frame, tok)


@register
class RegexTokenizer(_TextStage):
    """Split on ``pattern`` (gaps) or collect its matches, then drop tokens shorter than minTokenLength."""

    spark_classes = (_SPARK + "RegexTokenizer",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        pattern = str(param_or(meta, "pattern", r"\s+"))
        try:
            self.pattern = re.compile(pattern, re.ASCII)
        except re.error as exc:
            raise ModelLoadError(f"{meta.path}: RegexTokenizer pattern {pattern!r} is not usable here: {exc}") from None
        self.gaps = bool(param_or(meta, "gaps", True))
        self.min_length = int(param_or(meta, "minTokenLength", 1))
        self.lowercase = bool(param_or(meta, "toLowercase", True))

    def transform(self, frame: Frame) -> None:
        pattern, gaps, min_len, lower = self.pattern, self.gaps, self.min_length, self.lowercase

        def tok(s: str) -> list[str]:
            if lower:
                s = s.lower()
            tokens = (
                _java_split(pattern, s)
                if gaps
                else pattern.findall(s)
                if not pattern.groups
                else [m.group(0) for m in pattern.finditer(s)]
            )
            return [t for t in tokens if _java_len(t) >= min_len] if min_len > 0 else tokens

        self._apply(frame, tok)


@register
class StopWordsRemover(Stage):
    """Drop the saved ``stopWords``; case-insensitive unless caseSensitive (single or multi column)."""

    spark_classes = (_SPARK + "StopWordsRemover",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        words = [str(w) for w in (meta.get("stopWords") or [])]
        self.case_sensitive = bool(param_or(meta, "caseSensitive", False))
        self.words = frozenset(words if self.case_sensitive else (w.lower() for w in words))
        self.name = f"StopWordsRemover ({meta.uid})"

    def input_datatype(self, column: str) -> str:
        return "BYTES"

    def output_spec(self, column: str) -> tuple[str, tuple[int, ...]]:
        return "BYTES", (-1, -1)

    def setup(self, schema: Schema) -> None:
        for col in self.outputs:
            schema[col] = ColumnInfo("tokens")

    def transform(self, frame: Frame) -> None:
        words = self.words
        for src, dst in zip(self.inputs, self.outputs, strict=True):
            col = frame[src]
            out = np.empty(len(col), dtype=object)
            for i, tokens in enumerate(col):
                if tokens is None:
                    out[i] = None
                elif self.case_sensitive:
                    out[i] = [t for t in tokens if t not in words]
                else:
                    out[i] = [t for t in tokens if t is None or t.lower() not in words]
            frame[dst] = out


@register
class NGram(_TextStage):
    """Space-joined runs of n consecutive tokens; fewer than n tokens give none."""

    spark_classes = (_SPARK + "NGram",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.n = int(param_or(meta, "n", 2))

    def transform(self, frame: Frame) -> None:
        n = self.n

        def grams(tokens: list[str]) -> list[str]:
            return [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]

        self._apply(frame, grams)


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


def _counts_to_vectors(n: int, size: int, rows: np.ndarray, cols: np.ndarray, binary: bool) -> Any:
    """Term counts per row: (row, index) pairs, repeated once per occurrence, summed into a vector column."""
    if not len(rows):
        return sparse_rows(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), n, size)
    keys, counts = np.unique(rows * size + cols, return_counts=True)
    values = np.ones(len(keys)) if binary else counts.astype(np.float64)
    return sparse_rows(keys // size, keys % size, values, n, size, ordered=True)


@register
class HashingTF(_VectorOut):
    """Term frequencies at ``nonNegativeMod(murmur3(term, 42), numFeatures)``; Spark < 3 models use the old hash."""

    spark_classes = (_SPARK + "HashingTF",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.size = int(param_or(meta, "numFeatures", 1 << 18))
        self.binary = bool(param_or(meta, "binary", False))
        self.hash = _hash2 if meta.spark_version[0] < 3 else _hash3
        self.in_col, self.out_col = self.inputs[0], self.outputs[0]
        self.name = f"HashingTF ({meta.uid})"

    def input_datatype(self, column: str) -> str:
        return "BYTES"

    def transform(self, frame: Frame) -> None:
        col = frame[self.in_col]
        size, h = self.size, self.hash
        n = len(col)
        if n == 1:  # the serving path: one document, no numpy bookkeeping
            tokens = col[0]
            if tokens is None:
                raise self._null()
            if h is _hash3:
                mh = mmh3.hash
                counts = Counter([mh(t, 42) % size for t in tokens])
            else:
                counts = Counter([h(t) % size for t in tokens])
            out = np.zeros((1, size)) if size <= 65536 else None
            if out is not None:
                for idx, c in counts.items():
                    out[0, idx] = 1.0 if self.binary else c
                frame[self.out_col] = out
                return
        # Batch path: hash each distinct term once, then look every occurrence up.
        lengths = [len(tokens) if tokens is not None else -1 for tokens in col]
        if -1 in lengths:
            raise self._null()
        flat = list(chain.from_iterable(col))
        lut = dict.fromkeys(flat, 0)
        if h is _hash3:
            mh = mmh3.hash
            for t in lut:
                lut[t] = mh(t, 42) % size
        else:
            for t in lut:
                lut[t] = h(t) % size
        cols = np.fromiter((lut[t] for t in flat), dtype=np.int64, count=len(flat))
        rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
        frame[self.out_col] = _counts_to_vectors(n, size, rows, cols, self.binary)

    def _null(self) -> Exception:
        from modelport.sparkml.vectors import invalid

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

    def transform(self, frame: Frame) -> None:
        col = frame[self.in_col]
        vocab, min_tf = self.vocab, self.min_tf
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for i, tokens in enumerate(col):
            if tokens is None:
                from modelport.sparkml.vectors import invalid

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


@register
class IDFModel(_VectorOut):
    """Scales each term frequency by its saved idf; sparse inputs stay sparse."""

    spark_classes = (_SPARK + "IDFModel",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        from modelport.sparkml.reader import dense_vector

        table = read_data(meta.path)
        self.idf = dense_vector(table.column("idf")[0].as_py())
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


@register
class FeatureHasher(_VectorOut):
    """Hashes numeric columns by name (value added) and string/boolean/categorical ones as ``name=value`` (1.0)."""

    spark_classes = (_SPARK + "FeatureHasher",)

    def __init__(self, meta: StageMeta) -> None:
        super().__init__(meta)
        self.size = int(param_or(meta, "numFeatures", 1 << 18))
        self.categorical = set(meta.get("categoricalCols") or [])
        self.name = f"FeatureHasher ({meta.uid})"

    def input_datatype(self, column: str) -> str:
        return "BYTES" if column in self.categorical else "FP64"

    def transform(self, frame: Frame) -> None:
        from modelport.sparkml.vectors import java_double_str

        n, size = frame.n, self.size
        acc: dict[tuple[int, int], float] = {}
        for name in self.inputs:
            col = frame[name]
            is_text = col.dtype == object
            is_bool = col.dtype == np.bool_
            if is_text or is_bool or name in self.categorical:
                for i, v in enumerate(col.tolist()):
                    if v is None or (not is_text and not is_bool and v != v):
                        continue
                    if is_bool:
                        text = "true" if v else "false"
                    elif isinstance(v, float):
                        text = java_double_str(v)
                    else:
                        text = str(v)
                    key = (i, _hash3(f"{name}={text}") % size)
                    acc[key] = acc.get(key, 0.0) + 1.0
            else:
                idx = _hash3(name) % size
                for i, v in enumerate(np.asarray(col, dtype=np.float64).tolist()):
                    key = (i, idx)
                    acc[key] = acc.get(key, 0.0) + v
        rows = np.fromiter((k[0] for k in acc), dtype=np.int64, count=len(acc))
        cols = np.fromiter((k[1] for k in acc), dtype=np.int64, count=len(acc))
        vals = np.fromiter(acc.values(), dtype=np.float64, count=len(acc))
        frame[self.outputs[0]] = sparse_rows(rows, cols, vals, n, size)
