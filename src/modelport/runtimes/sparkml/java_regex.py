"""``java.util.regex`` patterns run on Python's ``re``: a translator that refuses what it cannot keep exact.

Spark's RegexTokenizer compiles its pattern with Java's regex engine (Java 17 here). The two
engines agree on most syntax but not on all of it, and where they differ a pattern silently
matches something else. :func:`translate` rewrites a Java pattern into an equivalent Python one,
construct by construct, and raises :class:`UnsupportedRegex` naming the construct when it cannot:

- ``.`` excludes every Java line terminator (``\\n \\r \\u0085 \\u2028 \\u2029``), not only ``\\n``;
  ``^``/``$`` (and ``\\Z``) follow Java's anchoring rules, also under ``(?m)``; ``(?s)``/``(?m)``
  apply from where they stand to the end of the enclosing group, as in Java.
- ``\\b``/``\\B`` use Java 17's word characters: letters and digits in any script plus ``_``, and a
  non-spacing mark after a letter or digit (Java 19+ made ``\\b`` ASCII-only like ``\\w``).
- Character classes: nested ``[a[b]]`` (union) and ``&&`` (intersection) are rewritten with
  look-aheads; ``\\p{..}`` POSIX classes (ASCII, as Java) and Unicode general categories are
  expanded to ranges; ``\\h \\v \\R``, ``\\Q..\\E``, ``\\x{..}``, ``\\0oo``, ``\\cX``, ``\\e``,
  ``\\k<name>`` and ``(?<name>..)`` are translated.
- Possessive quantifiers and atomic groups need no translation (Python 3.11 has them).

:func:`java_split` is ``Pattern.split(input)`` (limit 0): capturing groups do not add tokens, a
zero-width match at the start adds no empty leading token, trailing empty strings are removed.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable

__all__ = ["UnsupportedRegex", "compile_java", "java_find_all", "java_split", "translate"]

Ranges = list[tuple[int, int]]

_TERMINATORS = "\\n\\r\\x85\\u2028\\u2029"
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "a": "\a", "e": "\x1b"}
_PASS_THROUGH = set("dDsSwW")  # ASCII-only in Java by default, as under re.ASCII
_POSIX: dict[str, str] = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\x00-\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \t",
    "Cntrl": "\x00-\x1f\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \t\n\x0b\f\r",
}
_HSPACE: Ranges = [(0x20, 0x20), (0x09, 0x09), (0xA0, 0xA0), (0x1680, 0x1680), (0x180E, 0x180E)]
_HSPACE += [(0x2000, 0x200A), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)]
_VSPACE: Ranges = [(0x0A, 0x0D), (0x85, 0x85), (0x2028, 0x2029)]


class UnsupportedRegex(ValueError):
    """A Java pattern construct this translator cannot run exactly on Python's ``re``."""


@functools.cache
def _categories() -> dict[str, Ranges]:
    """Code point ranges of each Unicode general category (two-letter names), from unicodedata."""
    out: dict[str, Ranges] = {}
    prev, start = None, 0
    for cp in range(sys.maxunicode + 2):
        cat = unicodedata.category(chr(cp)) if cp <= sys.maxunicode else None
        if cat != prev:
            if prev is not None:
                out.setdefault(prev, []).append((start, cp - 1))
            prev, start = cat, cp
    return out


def _category(name: str) -> Ranges:
    cats = _categories()
    if name == "LC":
        names = ["Lu", "Ll", "Lt"]
    elif len(name) == 1:
        names = [c for c in cats if c[0] == name]
    else:
        names = [name] if name in cats else []
    if not names:
        raise UnsupportedRegex(f"Unicode property \\p{{{name}}}")
    return sorted(r for n in names for r in cats[n])


@functools.cache
def _word_ranges(with_underscore: bool) -> str:
    """Java 17's ``\\b`` word characters: ``Character.isLetterOrDigit`` (letters, Nd) and ``_``."""
    ranges = [*_category("L"), *_category("Nd")] + ([(0x5F, 0x5F)] if with_underscore else [])
    return _class_body(sorted(ranges))


def _char(cp: int) -> str:
    """One code point written safely inside a Python character class."""
    ch = chr(cp)
    if ch in "\\]^-[&~|" or cp < 0x20 or 0xD800 <= cp <= 0xDFFF:
        return f"\\U{cp:08x}" if cp > 0xFFFF else f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"
    return ch


def _class_body(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(_char(a) if a == b else f"{_char(a)}-{_char(b)}" for a, b in ranges)


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    nxt = 0
    for a, b in sorted(ranges):
        if a > nxt:
            out.append((nxt, a - 1))
        nxt = max(nxt, b + 1)
    if nxt <= sys.maxunicode:
        out.append((nxt, sys.maxunicode))
    return out


@functools.cache
def _boundary(negated: bool) -> str:
    """Java 17's ``\\b`` (or ``\\B``) as look-arounds over its word characters.

    Left of the position is a word when the previous code point is a word character, or a
    non-spacing mark whose base (before up to three marks) is a letter or digit; right likewise.
    """
    word, base = _word_ranges(True), _word_ranges(False)
    mark = _class_body(_category("Mn"))
    behind = [f"(?<=[{word}])"] + [f"(?<=[{base}]{f'[{mark}]' * k})" for k in (1, 2, 3)]
    left = "(?:" + "|".join(behind) + ")"
    right = f"(?:[{word}]|(?=[{mark}])(?:" + "|".join(f"(?<=[{base}]{f'[{mark}]' * k})" for k in (0, 1, 2)) + "))"
    if negated:
        return f"(?:(?={right})(?={left})|(?!{right})(?!{left}))"
    return f"(?:(?={right})(?!{left})|(?!{right})(?={left}))"


class _Class:
    """A parsed Java character class: a union of items, optionally intersected (``&&``) and negated."""

    def __init__(self) -> None:
        self.negated = False
        self.operands: list[list[str | _Class]] = [[]]  # operands of &&, each a union of items

    def is_simple(self) -> bool:
        return len(self.operands) == 1 and all(isinstance(i, str) for i in self.operands[0])

    def emit(self) -> str:
        """A Python pattern matching exactly one character of this class."""
        if self.is_simple():
            body = "".join(i for i in self.operands[0] if isinstance(i, str))
            if not body:
                return "[^\\s\\S]" if not self.negated else "[\\s\\S]"
            return f"[{'^' if self.negated else ''}{body}]"
        if self.negated:
            raise UnsupportedRegex("a negated character class holding a nested class or '&&'")
        parts = [self._union(op) for op in self.operands]
        if len(parts) == 1:
            return parts[0]
        return "(?:" + "".join(f"(?={p})" for p in parts[1:]) + parts[0] + ")"

    @staticmethod
    def _union(items: list[str | _Class]) -> str:
        body = "".join(i for i in items if isinstance(i, str))
        alts = [f"[{body}]"] if body else []
        for item in items:
            if isinstance(item, _Class):
                if item.is_simple() and not item.negated:
                    inner = item.emit()
                    alts.append(inner)
                else:
                    alts.append(item.emit())
        if not alts:
            return "[^\\s\\S]"
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.groups = 0
        self.flags = {"s": False, "m": False}
        self.global_flags = ""

    def fail(self, what: str) -> UnsupportedRegex:
        return UnsupportedRegex(f"{what} (at position {self.i} of {self.p!r})")

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def run(self) -> str:
        stack: list[dict[str, bool]] = []
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            if c == "\\":
                self.out.append(self.escape(in_class=False))
                continue
            self.i += 1
            if c == ".":
                self.out.append("[\\s\\S]" if self.flags["s"] else f"[^{_TERMINATORS}]")
            elif c == "^":
                if self.flags["m"]:
                    self.out.append("(?:\\A|(?<=[\\n\\x85\\u2028\\u2029])(?!\\Z)|(?<=\\r)(?!\\n)(?!\\Z))")
                else:
                    self.out.append("\\A")
            elif c == "$":
                self.out.append(self.dollar())
            elif c == "[":
                self.out.append(self.klass().emit())
            elif c == "(":
                stack.append(dict(self.flags))
                self.group(stack)
            elif c == ")":
                if not stack:
                    raise self.fail("an unbalanced ')'")
                self.flags = stack.pop()
                self.out.append(")")
            elif c in "|*+?{}":
                self.out.append(c)
            else:
                self.out.append(re.escape(c))
        return self.global_flags + "".join(self.out)

    def dollar(self) -> str:
        if self.flags["m"]:
            return "(?:(?<!\\r)(?=\\n)|(?=[\\r\\x85\\u2028\\u2029])|\\Z)"
        return "(?:(?=\\r\\n\\Z)|(?<!\\r)(?=\\n\\Z)|(?=[\\r\\x85\\u2028\\u2029]\\Z)|\\Z)"

    def group(self, stack: list[dict[str, bool]]) -> None:
        p = self.p
        if self.peek() != "?":
            self.groups += 1
            self.out.append("(")
            return
        rest = p[self.i + 1 :]
        for prefix in (":", "=", "!", "<=", "<!", ">"):
            if rest.startswith(prefix):
                self.out.append("(?" + prefix)
                self.i += 1 + len(prefix)
                return
        named = re.match(r"<([a-zA-Z][a-zA-Z0-9]*)>", rest)
        if named:
            self.groups += 1
            self.out.append(f"(?P<{named.group(1)}>")
            self.i += 1 + named.end()
            return
        flags = re.match(r"([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])", rest)
        if not flags:
            raise self.fail("an unknown group construct '(?'")
        on, off, end = flags.group(1), flags.group(2) or "", flags.group(3)
        unknown = set(on + off) - set("ism")
        if unknown:
            raise self.fail(f"the inline flag(s) {''.join(sorted(unknown))!r} (supported: i, s, m)")
        self.i += 1 + flags.end()
        for f in "sm":
            if f in on:
                self.flags[f] = True
            if f in off:
                self.flags[f] = False
        case = "i" in on or "i" in off
        if end == ")":
            stack.pop()  # an inline modifier opens no group: its flags last to the end of the enclosing one
            if case:
                at_start = not self.out and not stack
                if not at_start or "i" in off:
                    raise self.fail("an inline (?i) flag after the start of the pattern (use a (?i:...) group)")
                self.global_flags = "(?i)"
            return
        self.out.append("(?" + ("i" if "i" in on else "") + ("-i" if "i" in off else "") + ":")

    def klass(self) -> _Class:
        """Parse a class after its '[' up to and including the matching ']'."""
        p = self.p
        cls = _Class()
        if self.peek() == "^":
            cls.negated = True
            self.i += 1
        first = True
        while True:
            if self.i >= len(p):
                raise self.fail("an unclosed character class")
            c = p[self.i]
            items = cls.operands[-1]
            if c == "]" and not first:
                self.i += 1
                return cls
            first = False
            if c == "[":
                self.i += 1
                items.append(self.klass())
                continue
            if c == "&" and self.peek(1) == "&":
                self.i += 2
                cls.operands.append([])
                continue
            lo = self.class_atom()
            if isinstance(lo, str):  # an escape standing for a set (\d, \p{..}, ...)
                items.append(lo)
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", "[", ""):
                self.i += 1
                if self.peek() == "&" and self.peek(1) == "&":
                    raise self.fail("a range ending in '&&'")
                hi = self.class_atom()
                if isinstance(hi, str):
                    raise self.fail("a range ending in a class escape")
                if hi < lo:
                    raise self.fail("an illegal character range")
                items.append(f"{_char(lo)}-{_char(hi)}")
            else:
                items.append(_char(lo))

    def class_atom(self) -> int | str:
        """One class member: a code point, or a class-body string for a set escape."""
        c = self.p[self.i]
        if c != "\\":
            cp = ord(c)
            self.i += 1
            return cp
        esc = self.escape(in_class=True)
        if esc.startswith("\x00cp:"):
            return int(esc[4:])
        return esc

    def escape(self, in_class: bool) -> str:
        """Translate the escape at ``self.i`` (a backslash); in a class, a single code point comes back coded."""
        p = self.p
        self.i += 1
        if self.i >= len(p):
            raise self.fail("a trailing backslash")
        c = p[self.i]
        self.i += 1

        def literal(cp: int) -> str:
            if in_class:
                return f"\x00cp:{cp}"
            return re.escape(chr(cp))

        if c in _PASS_THROUGH:
            return "\\" + c
        if c in _SIMPLE_ESCAPES:
            return literal(ord(_SIMPLE_ESCAPES[c]))
        if c == "Q":
            end = p.find("\\E", self.i)
            text = p[self.i :] if end < 0 else p[self.i : end]
            self.i = len(p) if end < 0 else end + 2
            if in_class:
                return "".join(_char(ord(ch)) for ch in text) or "\x00empty"
            return re.escape(text)
        if c == "E":
            return "" if not in_class else "\x00empty"
        if c == "x":
            if self.peek() == "{":
                end = p.find("}", self.i)
                digits = p[self.i + 1 : end] if end > 0 else ""
                self.i = end + 1
            else:
                digits = p[self.i : self.i + 2]
                self.i += 2
            return literal(self._hex(digits))
        if c == "u":
            cp = self._hex(p[self.i : self.i + 4])
            self.i += 4
            if 0xD800 <= cp <= 0xDBFF and p[self.i : self.i + 2] == "\\u":
                low = self._hex(p[self.i + 2 : self.i + 6])
                if 0xDC00 <= low <= 0xDFFF:
                    self.i += 6
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
            return literal(cp)
        if c == "0":
            m = re.match(r"[0-3][0-7]{2}|[0-7]{1,2}", p[self.i :])
            if not m:
                raise self.fail("an octal escape without digits")
            self.i += m.end()
            return literal(int(m.group(0), 8))
        if c == "c":
            if self.i >= len(p):
                raise self.fail("a \\c escape without its letter")
            ch = p[self.i]
            self.i += 1
            return literal(ord(ch) ^ 64)
        if c == "N" and self.peek() == "{":
            end = p.find("}", self.i)
            name = p[self.i + 1 : end]
            self.i = end + 1
            try:
                return literal(ord(unicodedata.lookup(name)))
            except KeyError:
                raise self.fail(f"the character name \\N{{{name}}}") from None
        if c in "pP":
            if self.peek() == "{":
                end = p.find("}", self.i)
                name = p[self.i + 1 : end]
                self.i = end + 1
            else:
                name = p[self.i : self.i + 1]
                self.i += 1
            return self._set(self._property(name), negated=c == "P", in_class=in_class)
        if c in "hH":
            return self._set(_HSPACE, negated=c == "H", in_class=in_class)
        if c in "vV":
            return self._set(_VSPACE, negated=c == "V", in_class=in_class)
        if in_class:
            if c.isalnum():
                raise self.fail(f"the escape \\{c} inside a character class")
            return f"\x00cp:{ord(c)}"
        if c in "bB":
            if self.peek() == "{":
                raise self.fail("a \\b{...} boundary")
            return _boundary(c == "B")
        if c == "A":
            return "\\A"
        if c == "z":
            return "\\Z"
        if c == "Z":
            return "(?:(?=\\r\\n\\Z)|(?<!\\r)(?=\\n\\Z)|(?=[\\r\\x85\\u2028\\u2029]\\Z)|\\Z)"
        if c == "R":
            return "(?>\\r\\n|[\\n\\x0b\\f\\r\\x85\\u2028\\u2029])"
        if c == "k":
            m = re.match(r"<([a-zA-Z][a-zA-Z0-9]*)>", p[self.i :])
            if not m:
                raise self.fail("a \\k back reference without <name>")
            self.i += m.end()
            return f"(?P={m.group(1)})"
        if c.isdigit():
            # Java reads further digits only while they still name an existing group.
            number = int(c)
            while self.i < len(p) and p[self.i].isdigit() and number * 10 + int(p[self.i]) <= self.groups:
                number = number * 10 + int(p[self.i])
                self.i += 1
            return f"(?:\\{number})"
        if c.isalnum():
            raise self.fail(f"the escape \\{c}")
        return re.escape(c)

    def _hex(self, digits: str) -> int:
        try:
            return int(digits, 16)
        except ValueError:
            raise self.fail(f"a hexadecimal escape with digits {digits!r}") from None

    def _property(self, name: str) -> Ranges | str:
        """A property as code point ranges, or a POSIX class body."""
        if name in _POSIX:
            return _POSIX[name]
        bare = name
        for prefix in ("general_category=", "gc=", "Is"):
            if bare.startswith(prefix):
                bare = bare[len(prefix) :]
        if bare in _POSIX and name.startswith("Is"):
            raise self.fail(f"the property \\p{{{name}}}")
        if re.fullmatch(r"[A-Z][a-z&]?", bare) or bare == "LC":
            try:
                return _category(bare.replace("&", "C") if bare.endswith("&") else bare)
            except UnsupportedRegex:
                raise self.fail(f"the property \\p{{{name}}}") from None
        raise self.fail(f"the property \\p{{{name}}} (supported: POSIX classes and general categories)")

    @staticmethod
    def _set(value: Ranges | str, negated: bool, in_class: bool) -> str:
        if isinstance(value, str):
            ranges: Ranges = []
            for m in re.finditer(r"(.)-(.)|(.)", value, re.S):
                a, b = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(3))
                ranges.append((ord(a), ord(b)))
        else:
            ranges = value
        if negated:
            ranges = _complement(ranges)
        body = _class_body(ranges)
        return body if in_class else f"[{body}]" if body else "[^\\s\\S]"


def translate(pattern: str) -> str:
    """The Python ``re`` pattern (to compile with ``re.ASCII``) that matches as the Java pattern does."""
    t = _Translator(pattern)
    out = t.run()
    return out.replace("\x00empty", "")


def compile_java(pattern: str) -> re.Pattern[str]:
    """Compile a Java pattern for Python; raises UnsupportedRegex (a construct) or re.error (invalid)."""
    return re.compile(translate(pattern), re.ASCII)


def java_split(pattern: re.Pattern[str], text: str) -> list[str]:
    """``Pattern.split(text)`` with limit 0: groups add nothing, trailing empty strings are dropped."""
    out: list[str] = []
    index = 0
    for m in pattern.finditer(text):
        start, end = m.span()
        if index == 0 and start == 0 and end == 0:
            continue  # a zero-width match at the start gives no empty leading token
        out.append(text[index:start])
        index = end
    if index == 0:
        return [text]
    out.append(text[index:])
    while out and out[-1] == "":
        out.pop()
    return out


def java_find_all(pattern: re.Pattern[str], text: str) -> list[str]:
    """Every match of ``pattern`` in ``text`` (the whole match, never a group), as ``Matcher.find`` walks."""
    return [m.group(0) for m in pattern.finditer(text)]


Tokenize = Callable[[re.Pattern[str], str], list[str]]
