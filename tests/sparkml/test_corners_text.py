"""Text corners against real pyspark (issue 12): Java regex semantics in RegexTokenizer, Java lower-casing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import modelport
from modelport.core.errors import ModelLoadError
from modelport.runtimes.sparkml.java_case import java_lower
from tests.sparkml.parity import compare, fit_save_load

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

TEXTS = [
    "a, b;c",
    "Hello, World! 123 foo_bar",
    "  lead and trail  ",
    "café naïve über-cool ÉCOLE",
    "x\r\ny\nz\u2028w\r",
    "line one\r\n",
    "e\u0301x a\u0301b c\u0301",
    "αβγ δ_ε 12½ ⅷ ΟΔΟΣ",
    "",
    "tab\there,,,",
    "a1b2c3 x,y,",
    "K \u212a İstanbul DİYARBAKIR",  # letters Unicode 14 added are letters in Python, not in Java 17: not here
]

# (pattern, gaps): each differs between Python's re and Java's regex on some text above.
PATTERNS = [
    (r"(,|;)\s*", True),  # a group in a gaps pattern: Java's split ignores groups
    (r"(x)?,", True),  # a group that does not take part in the match
    (r"[a-z&&[^aeiou]]+", False),  # class intersection
    (r"\b\w+\b", False),
    (r"\b", True),  # Java 17's \b: letters of any script are word characters
    (r".+", False),  # '.' stops at every Java line terminator
    (r"\w+$", False),  # '$' before a final line terminator, never between \r and \n
    (r"(?m)^\S+", False),
    (r"[\p{Punct}\s]+", True),
    (r"\p{L}++", False),  # possessive quantifier, a Unicode category
    (r"\h+|\v", True),
    (r"[abc[x-z]]+", False),
]


def _df(spark: Any, texts: list[str]) -> Any:
    return spark.createDataFrame([(t,) for t in texts], "text string")


def test_regex_tokenizer_follows_java_regex(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.feature import RegexTokenizer

    stages = [
        RegexTokenizer(inputCol="text", outputCol=f"t{i}", pattern=p, gaps=g, toLowercase=i % 2 == 0, minTokenLength=0)
        for i, (p, g) in enumerate(PATTERNS)
    ]
    cols = [f"t{i}" for i in range(len(PATTERNS))]
    fitted, model = fit_save_load(stages, _df(spark, TEXTS), tmp_path / "m", outputs=cols)
    compare(fitted, model, _df(spark, TEXTS), [{"text": t} for t in TEXTS], cols)


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"\p{javaLowerCase}+", "javaLowerCase"),
        (r"(?x) a b", "'x'"),
        (r"a(?i)b", "(?i)"),
        (r"[^a[b]]", "negated character class"),
        (r"\X", "\\X"),
    ],
)
def test_untranslatable_pattern_is_refused_at_load(spark: Any, tmp_path: Path, pattern: str, construct: str) -> None:
    from pyspark.ml.feature import RegexTokenizer

    stages = [RegexTokenizer(inputCol="text", outputCol="t", pattern=pattern)]
    path = tmp_path / "m"
    fitted, _ = _fit_only(stages, _df(spark, ["ab"]), path)
    assert fitted is not None  # Spark itself accepts the pattern
    with pytest.raises(ModelLoadError) as err:
        modelport.load_model(path)
    assert "RegexTokenizer" in str(err.value) and construct in str(err.value) and repr(pattern) in str(err.value)


def _fit_only(stages: list[Any], df: Any, path: Path) -> tuple[Any, None]:
    from pyspark.ml import Pipeline

    fitted = Pipeline(stages=stages).fit(df)
    fitted.transform(df).collect()
    fitted.write().overwrite().save(str(path))
    return fitted, None


def test_lower_casing_is_javas(spark: Any, tmp_path: Path) -> None:
    # Tokenizer and RegexTokenizer lower-case with Java's default locale, StopWordsRemover with its own.
    from pyspark.ml.feature import RegexTokenizer, StopWordsRemover, Tokenizer

    texts = ["DİYARBAKIR ISPARTA ıı İi", "\u2c2f\U00010570 ΟΔΟΣ Kelvin\u212a", "I\u0307 Ii"]
    stages = [
        Tokenizer(inputCol="text", outputCol="words"),
        RegexTokenizer(inputCol="text", outputCol="rwords", pattern=r"\s+"),
        RegexTokenizer(inputCol="text", outputCol="raw", pattern=r"\s+", toLowercase=False),
        StopWordsRemover(inputCol="raw", outputCol="tr", stopWords=["ısparta", "ii", "i"], locale="tr"),
        StopWordsRemover(inputCol="raw", outputCol="en", stopWords=["isparta", "ii", "i̇"], locale="en_US"),
    ]
    cols = ["words", "rwords", "tr", "en"]
    fitted, model = fit_save_load(stages, _df(spark, texts), tmp_path / "m", outputs=cols)
    compare(fitted, model, _df(spark, texts), [{"text": t} for t in texts], cols)


def test_java_lower_matches_the_jvm_on_every_code_point(spark: Any) -> None:
    sep = "\x01"
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF and c != 1]
    text = sep.join(chars)
    want = spark._jvm.org.apache.commons.lang3.StringUtils.lowerCase(text, spark._jvm.java.util.Locale.ROOT)
    got = java_lower(text)
    if got != want:
        diffs = [(hex(ord(c)), w, g) for c, w, g in zip(chars, want.split(sep), got.split(sep), strict=True) if w != g]
        raise AssertionError(f"{len(diffs)} code points lower-case differently: {diffs[:10]}")
