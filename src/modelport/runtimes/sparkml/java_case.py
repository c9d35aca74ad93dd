"""Java's ``String.toLowerCase`` on Python strings (what Spark's text stages lower-case with).

Python's ``str.lower`` and Java's ``toLowerCase`` share Unicode's full case mapping, final sigma
included, but Java 17 speaks Unicode 13: the 40 upper-case letters Unicode 14 added (U+2C2F,
U+A7C0, U+A7D0, U+A7D6, U+A7D8 and Vithkuqi U+10570..U+10595) stay as they are there. Checked
code point by code point against Java 17's ``toLowerCase`` (``tests/sparkml/test_corners_text.py``).
Locales change the mapping in Java only for Turkish and Azeri (dotted and dotless i), handled
here, and Lithuanian (dots kept over accented i), refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["java_lower", "locale_lower"]

_NEWER_THAN_JAVA17 = re.compile(
    "([\u2c2f\ua7c0\ua7d0\ua7d6\ua7d8\U00010570-\U0001057a\U0001057c-\U0001058a\U0001058c-\U00010592"
    "\U00010594\U00010595]+)"
)
_TURKIC_I = re.compile("I\u0307|I|\u0130")
_TURKIC = {"I\u0307": "i", "I": "\u0131", "\u0130": "i"}


def java_lower(s: str) -> str:
    """``s.toLowerCase()`` as Java 17 computes it with a non-Turkic, non-Lithuanian default locale."""
    if s.isascii():
        return s.lower()
    if _NEWER_THAN_JAVA17.search(s) is None:
        return s.lower()
    parts = _NEWER_THAN_JAVA17.split(s)
    return "".join(p if i % 2 else p.lower() for i, p in enumerate(parts))


def _turkic_lower(s: str) -> str:
    if "I" in s or "\u0130" in s:
        s = _TURKIC_I.sub(lambda m: _TURKIC[m.group(0)], s)
    return java_lower(s)


def locale_lower(locale: str) -> Callable[[str], str]:
    """``toLowerCase(new Locale(...))`` for a saved locale such as ``en_US`` or ``tr``; ValueError if refused."""
    language = locale.replace("-", "_").split("_")[0].lower()
    if language in ("tr", "az"):
        return _turkic_lower
    if language == "lt":
        raise ValueError(
            f"locale '{locale}': Java's Lithuanian lower-casing (dots kept over accented i and j) is not "
            "implemented; supported: every other locale (Turkish and Azeri included)"
        )
    return java_lower
