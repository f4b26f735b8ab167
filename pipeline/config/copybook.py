"""COBOL copybooks → ikou layouts (pure Python; docs/copybooks.md).

``parse_copybook(text, path)`` reads a copybook (fixed or free source format) into a tree of
:class:`Item` with IBM Enterprise COBOL sizes and offsets; ``copybook_layout(path, ...)`` turns
it into an ordinary layout document (a dict, as a layout YAML file holds it), which
``ikou layout import`` writes as YAML and ``load_layout`` builds for a layout's ``copybook:`` key.
Every error is a :class:`CopybookError` (a :class:`LayoutError`) naming ``FILE:LINE``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from ikou.pipeline.config.layout import LayoutError

__all__ = [
    "CopybookError",
    "CopybookOptions",
    "Item",
    "copybook_layout",
    "dump_layout",
    "layout_from_reference",
    "parse_copybook",
    "parse_kind",
]


class CopybookError(LayoutError):
    """A copybook cannot be imported; the message names the copybook file and line."""


# -- source text → tokens -------------------------------------------------------------------

@dataclass
class Token:
    text: str
    file: str
    line: int
    literal: bool = False  # a quoted literal (text without the quotes)
    period: bool = False   # the separator period ending an entry


_INDICATORS = set(" *-/Dd$")


def _looks_fixed(lines: list[str]) -> bool:
    """Fixed format unless a line has program text in columns 1-7 or past column 80."""
    for raw in lines:
        line = raw.replace("\t", " ")
        if not line.strip():
            continue
        if line.lstrip().startswith("*>") and not line[:6].strip():
            continue
        indicator = line[6] if len(line) > 6 else " "
        if indicator in "*/":
            continue
        seq = line[:6]
        if indicator not in _INDICATORS or any(not (c.isdigit() or c == " ") for c in seq):
            return False
        if line[80:].strip():  # program text past column 80: not a card image
            return False
    return True


def _comment_text(text: str) -> str:
    return text.strip().strip("*").strip()


class _Source:
    """One copybook file: logical text (continuations joined) with a line per character,
    comment lines and trailing ``*>`` comments (for labels)."""

    def __init__(self, text: str, path: str, source_format: str | None):
        self.path = path
        lines = text.replace("\x1a", "").splitlines()  # DOS end-of-file marks
        if source_format not in (None, "auto", "fixed", "free"):
            raise CopybookError(f"{path}: source format must be fixed or free, got {source_format!r}")
        fixed = _looks_fixed(lines) if source_format in (None, "auto") else source_format == "fixed"
        self.fixed = fixed
        self.comments: dict[int, str] = {}   # line → text of a whole-line comment
        self.trailing: dict[int, str] = {}   # line → text of a trailing *> comment
        chars: list[str] = []
        where: list[int] = []
        prev_area = 0  # width of the last program line's area (a literal open there runs to 72)
        for no, raw in enumerate(lines, 1):
            line = raw.replace("\t", " ") if fixed else raw
            if fixed:
                indicator = line[6] if len(line) > 6 else " "
                area = line[7:72]
                if indicator in "*/":
                    self.comments[no] = _comment_text(line[7:72])
                    continue
                if indicator in "Dd":
                    continue
                if indicator == "$" or area.lstrip().startswith(">>"):
                    continue  # compiler directives
            else:
                indicator = " "
                area = line
                stripped = area.lstrip()
                if stripped.startswith("*>"):
                    self.comments[no] = _comment_text(stripped[2:])
                    continue
                if stripped.startswith(">>"):
                    continue
            area, trailing = _split_floating_comment(area)
            if trailing is not None:
                self.trailing[no] = _comment_text(trailing)
            if indicator == "-":
                # continuation: an open literal runs to column 72; it resumes after the
                # continuation line's first quote
                if chars and chars[-1] == "\n":
                    chars.pop()
                    where.pop()
                body = area.lstrip()
                if body[:1] in ("'", '"'):
                    pad = max(65 - prev_area, 0) if self._open_literal(chars) else 0
                    chars.extend(" " * pad)
                    where.extend([no] * pad)
                    body = body[1:]
                prev_area = len(area.rstrip())
                for c in body.rstrip():
                    chars.append(c)
                    where.append(no)
                chars.append("\n")
                where.append(no)
                continue
            prev_area = len(area.rstrip())
            for c in area.rstrip():
                chars.append(c)
                where.append(no)
            chars.append("\n")
            where.append(no)
        self.text = "".join(chars)
        self.where = where

    @staticmethod
    def _open_literal(chars: list[str]) -> bool:
        quote = None
        for c in chars:
            if quote is None and c in "'\"":
                quote = c
            elif c == quote:
                quote = None
        return quote is not None

    def label(self, line: int) -> str:
        if self.trailing.get(line):
            return self.trailing[line]
        return self.comments.get(line - 1, "")


def _split_floating_comment(area: str) -> tuple[str, str | None]:
    """Split ``*>`` (outside literals) off a line."""
    quote = None
    for i, c in enumerate(area):
        if quote is None and c in "'\"":
            quote = c
        elif c == quote:
            quote = None
        elif quote is None and c == "*" and area[i + 1:i + 2] == ">":
            return area[:i], area[i + 2:]
    return area, None


_LITERAL = re.compile(r"""(?:[XxNnGgZz])?(?:'(?:[^']|'')*'|"(?:[^"]|"")*")""")


def _tokens(src: _Source) -> list[Token]:
    out: list[Token] = []
    text, where, i, n = src.text, src.where, 0, len(src.text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        m = _LITERAL.match(text, i)
        if m and (m.group(0)[0] in "'\"" or text[i + 1] in "'\""):
            body = m.group(0)
            q = body[-1]
            value = body[body.index(q) + 1:-1].replace(q + q, q)
            out.append(Token(value, src.path, where[i], literal=True))
            i = m.end()
            if i < n and text[i] == "." and (i + 1 >= n or text[i + 1].isspace()):
                out.append(Token(".", src.path, where[i], period=True))
                i += 1
            continue
        if c in "'\"":
            raise CopybookError(f"{src.path}:{where[i]}: unterminated literal")
        j = i
        while j < n and not text[j].isspace() and text[j] not in "'\"":
            j += 1
        word = text[i:j]
        line = where[i]
        i = j
        period = False
        if word.endswith(".") and (j >= n or text[j].isspace()):
            word, period = word[:-1], True
        word = word.rstrip(",;")
        if word:
            out.append(Token(word, src.path, line))
        if period:
            out.append(Token(".", src.path, line, period=True))
    return out


# -- entries → items --------------------------------------------------------------------------

@dataclass
class Item:
    """One data description entry (level 01-49 or 77), with its computed place."""

    level: int
    name: str | None  # None: FILLER or unnamed
    file: str
    line: int
    label: str = ""
    picture: str | None = None
    usage: str | None = None       # normalised: DISPLAY, DISPLAY-1, NATIONAL, COMP, COMP-5, ...
    usage_text: str | None = None  # as written
    sign: tuple[str, bool] | None = None  # (leading|trailing, separate)
    sync: bool = False
    occurs: int | None = None
    occurs_min: int | None = None
    depending_on: str | None = None
    redefines: str | None = None
    values: dict = field(default_factory=dict)  # 88 condition name → values
    justified: bool = False
    blank_when_zero: bool = False
    children: list[Item] = field(default_factory=list)
    parent: Item | None = None
    # computed by _place
    offset: int = 0
    size: int = 0   # one occurrence
    area: int = 0   # the size of the REDEFINES area this item belongs to (Cobrix's length)
    pic: Pic | None = None

    @property
    def is_group(self) -> bool:
        return bool(self.children)

    @property
    def total(self) -> int:
        return self.size * (self.occurs or 1)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def cobol_name(self) -> str:
        return self.name or "FILLER"

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


_USAGES = {
    "DISPLAY": "DISPLAY", "DISPLAY-1": "DISPLAY-1", "NATIONAL": "NATIONAL",
    "COMP": "COMP", "COMPUTATIONAL": "COMP", "COMP-4": "COMP", "COMPUTATIONAL-4": "COMP",
    "BINARY": "COMP", "COMP-0": "COMP", "COMPUTATIONAL-0": "COMP",
    "COMP-5": "COMP-5", "COMPUTATIONAL-5": "COMP-5",
    "COMP-3": "COMP-3", "COMPUTATIONAL-3": "COMP-3", "PACKED-DECIMAL": "COMP-3",
    "COMP-1": "COMP-1", "COMPUTATIONAL-1": "COMP-1", "COMP-2": "COMP-2",
    "COMPUTATIONAL-2": "COMP-2",
}
_UNSUPPORTED_USAGES = {"INDEX", "POINTER", "POINTER-32", "PROCEDURE-POINTER",
                       "FUNCTION-POINTER", "OBJECT", "COMP-6", "COMP-9", "COMPUTATIONAL-6"}
_CLAUSE_WORDS = {
    "PIC", "PICTURE", "USAGE", "SIGN", "LEADING", "TRAILING", "SYNC", "SYNCHRONIZED",
    "OCCURS", "REDEFINES", "VALUE", "VALUES", "JUSTIFIED", "JUST", "BLANK", "INDEXED",
    "ASCENDING", "DESCENDING", "GLOBAL", "EXTERNAL", "RENAMES", "IS", "DEPENDING", "TIMES",
    "TO", "ON", "KEY", "BY", "ARE", "SEPARATE", "CHARACTER", "RIGHT", "LEFT", "WHEN", "ZERO",
    "ZEROS", "ZEROES", "THRU", "THROUGH",
} | set(_USAGES) | _UNSUPPORTED_USAGES
_FIGURATIVE = {"ZERO", "ZEROS", "ZEROES", "SPACE", "SPACES", "HIGH-VALUE", "HIGH-VALUES",
               "LOW-VALUE", "LOW-VALUES", "QUOTE", "QUOTES", "NULL", "NULLS"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class _Entries:
    """Walks the tokens entry by entry, resolving COPY statements."""

    def __init__(self, tokens: list[Token], sources: dict[str, _Source], copy_path, source_format,
                 stack: tuple[str, ...]):
        self.toks = tokens
        self.i = 0
        self.sources = sources
        self.copy_path = copy_path
        self.source_format = source_format
        self.stack = stack

    def __iter__(self):
        while self.i < len(self.toks):
            start = self.i
            while self.i < len(self.toks) and not self.toks[self.i].period:
                self.i += 1
            entry = self.toks[start:self.i]
            if self.i >= len(self.toks):
                if entry:
                    t = entry[-1]
                    raise CopybookError(f"{t.file}:{t.line}: the last entry has no period")
            self.i += 1
            if not entry:
                continue
            head = entry[0]
            if not head.literal and head.text.upper() == "COPY":
                yield from self._copy(entry)
                continue
            yield entry

    def _copy(self, entry: list[Token]):
        head = entry[0]
        at = f"{head.file}:{head.line}"
        if len(entry) < 2:
            raise CopybookError(f"{at}: COPY without a name")
        words = [t.text.upper() for t in entry]
        if "REPLACING" in words:
            raise CopybookError(f"{at}: COPY ... REPLACING is not supported")
        name = entry[1].text
        if not self.copy_path:
            raise CopybookError(
                f"{at}: COPY {name} is not resolved: give the folders of the copy members "
                f"(--copy-path DIR, or copy_path in copybook_options)")
        found = _find_member(name, self.copy_path)
        if found is None:
            dirs = ", ".join(str(d) for d in self.copy_path)
            raise CopybookError(f"{at}: COPY {name}: no member {name} (.cpy, .cob) in {dirs}")
        key = str(found.resolve())
        if key in self.stack:
            raise CopybookError(f"{at}: COPY {name}: the member copies itself ({found})")
        src = _Source(_read(found), str(found), self.source_format)
        self.sources[src.path] = src
        yield from _Entries(_tokens(src), self.sources, self.copy_path, self.source_format,
                            (*self.stack, key))


def _find_member(name: str, dirs) -> Path | None:
    wanted = {name.lower(), f"{name.lower()}.cpy", f"{name.lower()}.cob"}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if p.is_file() and p.name.lower() in wanted:
                return p
    return None


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CopybookError(f"{path}: file not found") from None
    except OSError as exc:
        raise CopybookError(f"{path}: cannot read: {exc}") from None
    for enc in ("utf-8", "cp932"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise CopybookError(f"{path}: not UTF-8 or CP932 text")


class _Clauses:
    def __init__(self, entry: list[Token]):
        self.toks = entry
        self.i = 0

    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def word(self, k: int = 0) -> str:
        t = self.peek(k)
        return "" if t is None or t.literal else t.text.upper()

    def next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def skip(self, *words: str) -> bool:
        if self.word() in words:
            self.i += 1
            return True
        return False

    def at(self) -> str:
        t = self.peek() or self.toks[-1]
        return f"{t.file}:{t.line}"

    def integer(self, what: str) -> int:
        t = self.peek()
        if t is None or t.literal or not t.text.isdigit():
            raise CopybookError(f"{self.at()}: {what}: expected an integer, got "
                                f"{'nothing' if t is None else repr(t.text)}")
        self.i += 1
        return int(t.text)

    def name(self, what: str) -> str:
        t = self.peek()
        if t is None or t.literal or not _NAME_RE.match(t.text):
            raise CopybookError(f"{self.at()}: {what}: expected a data name")
        self.i += 1
        # qualification: X OF Y / X IN Y (kept as X; names are resolved within the record)
        while self.word() in ("OF", "IN") and self.peek(1) is not None:
            self.i += 2
        return t.text

    def literal(self):
        t = self.next()
        if t.literal:
            return t.text
        w = t.text.upper()
        if w == "ALL" and self.peek() is not None:
            return self.literal()
        if w in _FIGURATIVE:
            return w
        if re.match(r"^[+-]?\d+$", t.text):
            return int(t.text)
        if re.match(r"^[+-]?\d*\.\d+$", t.text):
            return t.text
        raise CopybookError(f"{t.file}:{t.line}: expected a literal, got {t.text!r}")


def _entry_item(entry: list[Token], sources: dict[str, _Source]) -> tuple[Item, list]:
    """One entry → (Item, values of an 88) ."""
    head = entry[0]
    at = f"{head.file}:{head.line}"
    if head.literal or not head.text.isdigit():
        raise CopybookError(f"{at}: expected a level number, got {head.text!r}")
    level = int(head.text)
    if level == 66:
        raise CopybookError(f"{at}: level 66 (RENAMES) is not supported")
    if not (1 <= level <= 49 or level in (77, 88)):
        raise CopybookError(f"{at}: level {level} is not a COBOL level (01-49, 66, 77, 88)")
    c = _Clauses(entry)
    c.i = 1
    name = None
    t = c.peek()
    if t is not None and not t.literal and (t.text.upper() not in _CLAUSE_WORDS
                                             or t.text.upper() == "FILLER"):
        if not _NAME_RE.match(t.text):
            raise CopybookError(f"{at}: {t.text!r} is not a COBOL data name")
        name = None if t.text.upper() == "FILLER" else t.text
        c.i += 1
    src = sources.get(head.file)
    item = Item(level, name, head.file, head.line, label=src.label(head.line) if src else "")
    if level == 88:
        if not (c.skip("VALUE") or c.skip("VALUES")):
            raise CopybookError(f"{at}: a level-88 condition needs VALUE")
        c.skip("IS", "ARE")
        values = []
        while c.peek() is not None and c.word() not in ("WHEN",):
            low = c.literal()
            if c.skip("THRU", "THROUGH"):
                values.append({"from": low, "to": c.literal()})
            else:
                values.append(low)
        return item, values
    while c.peek() is not None:
        w = c.word()
        tok = c.peek()
        if w in ("PIC", "PICTURE"):
            c.next()
            c.skip("IS")
            p = c.peek()
            if p is None:
                raise CopybookError(f"{c.at()}: PICTURE without a picture string")
            c.next()
            item.picture = p.text
        elif w == "USAGE":
            c.next()
            c.skip("IS")
            _usage(c, item)
        elif w in _USAGES or w in _UNSUPPORTED_USAGES:
            _usage(c, item)
        elif w in ("SIGN", "LEADING", "TRAILING"):
            if c.skip("SIGN"):
                c.skip("IS")
            pos = c.word()
            if pos not in ("LEADING", "TRAILING"):
                raise CopybookError(f"{c.at()}: SIGN must be LEADING or TRAILING")
            c.next()
            separate = c.skip("SEPARATE")
            if separate:
                c.skip("CHARACTER")
            item.sign = (pos.lower(), separate)
        elif w in ("SYNC", "SYNCHRONIZED"):
            c.next()
            c.skip("LEFT", "RIGHT")
            item.sync = True
        elif w == "OCCURS":
            c.next()
            first = c.integer("OCCURS")
            if c.skip("TO"):
                item.occurs_min, item.occurs = first, c.integer("OCCURS ... TO")
            else:
                item.occurs = first
            c.skip("TIMES")
            if c.skip("DEPENDING"):
                c.skip("ON")
                item.depending_on = c.name("DEPENDING ON")
            elif item.occurs_min is not None:
                raise CopybookError(f"{at}: OCCURS {first} TO {item.occurs} needs DEPENDING ON")
            if item.occurs < 1:
                raise CopybookError(f"{at}: OCCURS needs at least one occurrence")
            while c.word() in ("ASCENDING", "DESCENDING", "INDEXED"):
                c.next()
                c.skip("KEY", "BY")
                c.skip("IS")
                while c.peek() is not None and not c.peek().literal and (
                        c.word() not in _CLAUSE_WORDS):
                    c.next()
        elif w == "REDEFINES":
            c.next()
            item.redefines = c.name("REDEFINES")
        elif w in ("VALUE", "VALUES"):
            c.next()
            c.skip("IS", "ARE")
            c.literal()
            while c.peek() is not None and (c.peek().literal or c.word() not in _CLAUSE_WORDS):
                c.literal()
        elif w in ("JUSTIFIED", "JUST"):
            c.next()
            c.skip("RIGHT")
            item.justified = True
        elif w == "BLANK":
            c.next()
            c.skip("WHEN")
            if not c.skip("ZERO", "ZEROS", "ZEROES"):
                raise CopybookError(f"{c.at()}: expected BLANK WHEN ZERO")
            item.blank_when_zero = True
        elif w in ("GLOBAL", "EXTERNAL", "IS"):
            c.next()
        elif w == "RENAMES":
            raise CopybookError(f"{c.at()}: RENAMES is not supported")
        else:
            raise CopybookError(f"{tok.file}:{tok.line}: unexpected {tok.text!r} in the entry of "
                                f"{item.cobol_name}")
    return item, []


def _usage(c: _Clauses, item: Item) -> None:
    t = c.next()
    w = t.text.upper()
    if w in _UNSUPPORTED_USAGES:
        raise CopybookError(f"{t.file}:{t.line}: USAGE {t.text} is not supported")
    if w not in _USAGES:
        raise CopybookError(f"{t.file}:{t.line}: unknown USAGE {t.text!r}")
    item.usage, item.usage_text = _USAGES[w], t.text


# -- pictures ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pic:
    text: str            # as written
    category: str        # alphanumeric, dbcs, national, numeric, edited
    chars: int           # character positions (bytes for DISPLAY; 2 bytes each for N/G)
    digits: int = 0      # 9 positions
    scale: int = 0       # implied decimal places (negative: P positions on the right)
    signed: bool = False


_REPEAT = re.compile(r"(.)\((\d+)\)")


def parse_picture(text: str, at: str) -> Pic:
    upper = text.upper()

    def expand(m):
        n = int(m.group(2))
        if n < 1:
            raise CopybookError(f"{at}: PICTURE {text}: a repetition needs at least 1")
        return m.group(1) * n

    s = _REPEAT.sub(expand, upper)
    if "(" in s or ")" in s:
        raise CopybookError(f"{at}: PICTURE {text}: unbalanced parentheses")
    bad = sorted(set(s) - set("XA9NGSVPZ*+-.,B0/$CRDE"))
    if bad:
        raise CopybookError(f"{at}: PICTURE {text}: unknown symbol(s) {''.join(bad)}")
    if "N" in s or "G" in s:
        if set(s) - set("NGB0/"):
            raise CopybookError(f"{at}: PICTURE {text}: N or G mixed with other symbols")
        return Pic(text, "dbcs" if "G" in s else "national", len(s))
    if "X" in s or "A" in s:
        if set(s) - set("XA9B0/"):
            raise CopybookError(f"{at}: PICTURE {text}: X or A mixed with numeric symbols")
        return Pic(text, "alphanumeric", len(s))
    signed = s.startswith("S")
    if "S" in s[1:]:
        raise CopybookError(f"{at}: PICTURE {text}: S must be the first symbol")
    body = s[1:] if signed else s
    if body.count("V") > 1:
        raise CopybookError(f"{at}: PICTURE {text}: more than one V")
    digits = body.count("9")
    edited = bool(set(body) - set("9VP"))
    if edited:
        if "E" in body:
            raise CopybookError(f"{at}: PICTURE {text}: floating-point edited pictures are "
                                f"not supported")
        for pair, letter in (("CR", "C"), ("DB", "D")):
            if body.count(letter) != body.count(pair) or body.count("R") != body.count("CR"):
                raise CopybookError(f"{at}: PICTURE {text}: {letter} is only valid in {pair}")
        chars = len(body) - body.count("V") - body.count("P")
        scale = _scale(body.replace(".", "V") if "V" not in body else body, text, at)
        digit_like = sum(body.count(ch) for ch in "9Z*")
        return Pic(text, "edited", chars, digit_like, scale, signed or bool(set(body) & set("+-CD")))
    if digits == 0:
        raise CopybookError(f"{at}: PICTURE {text}: a numeric picture needs a 9")
    return Pic(text, "numeric", digits, digits, _scale(body, text, at), signed)


def _scale(body: str, text: str, at: str) -> int:
    """Implied decimal places: 9s after V, or with P scaling the P positions."""
    ps = body.count("P")
    core = body.replace("V", "")
    if ps:
        first, last = core.find("P"), core.rfind("P")
        if core[first:last + 1] != "P" * ps:
            raise CopybookError(f"{at}: PICTURE {text}: P positions must be together")
        digits_after = sum(1 for ch in core[last + 1:] if ch in "9Z*")
        if last == len(core) - 1:  # 9(5)PPP: the value is digits × 10^ps
            if "V" in body and body.index("V") < body.index("P"):
                raise CopybookError(f"{at}: PICTURE {text}: V before trailing P positions")
            return -ps
        if first == 0 or body.startswith("VP"):  # PPP9(5) / VPPP9(5): all digits fractional
            return ps + digits_after
        raise CopybookError(f"{at}: PICTURE {text}: P positions must be leftmost or rightmost")
    if "V" not in body:
        return 0
    return sum(1 for ch in body[body.index("V") + 1:] if ch in "9Z*")


# -- tree and sizes ---------------------------------------------------------------------------

_BINARY_SIZES = ((4, 2), (9, 4), (18, 8))


@dataclass(frozen=True)
class CopybookOptions:
    """What an import needs beyond the copybook (the command's options, or a layout's
    ``copybook_options:``)."""

    source_format: str | None = None        # fixed | free | None (detect)
    copy_path: tuple[str, ...] = ()
    cobrix_binary: bool = False             # 19-38-digit binaries as 9/16 bytes (Cobrix)
    encoding: str = "cp037"
    pic_n: str | None = None                # dbcs | utf16 (None: utf16 for NATIONAL, dbcs else)
    dbcs_encoding: str | None = None
    record_type: str | None = None
    kinds: tuple[tuple[str, str | None, tuple[str, ...]], ...] = ()  # (name, code, alternatives)
    name: str | None = None
    record_format: str | None = None
    count_field: str | None = None          # the trailer's record count (a field of 'trailer')
    float_format: str = "ibm"               # COMP-1 / COMP-2: ibm (hexadecimal) | ieee
    blank_numbers: str = "error"            # an all-space DISPLAY number: error | null


def parse_copybook(text: str, path: str = "<copybook>", options: CopybookOptions | None = None,
                   ) -> list[Item]:
    """The 01-level records (and 77-level items) of a copybook, sized and placed."""
    options = options or CopybookOptions()
    src = _Source(text, path, options.source_format)
    sources = {path: src}
    entries = _Entries(_tokens(src), sources, [Path(p) for p in options.copy_path],
                       options.source_format, (path,))
    roots: list[Item] = []
    stack: list[Item] = []
    last: Item | None = None
    implicit: Item | None = None
    for entry in entries:
        item, values = _entry_item(entry, sources)
        if item.level == 88:
            if last is None:
                raise CopybookError(f"{item.where}: a level-88 condition before any item")
            last.values[item.cobol_name.replace("-", "_")] = values
            continue
        if item.level in (1, 77):
            stack = [item]
            roots.append(item)
            last = item
            implicit = None
            continue
        while stack and stack[-1].level >= item.level:
            stack.pop()
        if not stack:
            if roots and roots[-1].level == 77:
                raise CopybookError(f"{item.where}: level {item.level:02d} after a level-77 item")
            if implicit is None:
                # a copybook without an 01 level: an implicit record holds the items
                implicit = Item(1, None, path, 0)
                roots.append(implicit)
            stack = [implicit]
        parent = stack[-1]
        if parent.picture is not None:
            raise CopybookError(f"{item.where}: {parent.cobol_name} has a PICTURE and cannot "
                                f"hold subordinate items")
        item.parent = parent
        parent.children.append(item)
        stack.append(item)
        last = item
    if not roots:
        raise CopybookError(f"{path}: the copybook has no data description entries")
    for root in roots:
        _inherit(root, None, None)
        _elementary_sizes(root, options)
        _place(root, 0, root)
        root.area = root.size
    return roots


def _inherit(item: Item, usage: str | None, sign) -> None:
    if usage is not None:
        if item.usage is not None and item.usage != usage:
            raise CopybookError(f"{item.where}: USAGE {item.usage_text} of {item.cobol_name} "
                                f"conflicts with the group's USAGE {usage}")
        if item.usage is None:
            item.usage, item.usage_text = usage, usage
    if sign is not None and item.sign is None:
        item.sign = sign
    for c in item.children:
        _inherit(c, item.usage, item.sign)


def _elementary_sizes(root: Item, options: CopybookOptions) -> None:
    for it in root.walk():
        if it.is_group:
            if it.picture is not None:
                raise CopybookError(f"{it.where}: group {it.cobol_name} has a PICTURE")
            continue
        if it is root and it.line == 0:
            continue
        usage = it.usage or "DISPLAY"
        if usage in ("COMP-1", "COMP-2"):
            if it.picture is not None:
                raise CopybookError(f"{it.where}: {it.cobol_name}: USAGE {usage} takes no PICTURE")
            it.size = 4 if usage == "COMP-1" else 8
            continue
        if it.picture is None:
            raise CopybookError(f"{it.where}: {it.cobol_name} has no PICTURE")
        pic = parse_picture(it.picture, it.where)
        it.pic = pic
        what = f"{it.where}: {it.cobol_name} (PIC {it.picture}"
        if usage in ("COMP", "COMP-5", "COMP-3"):
            if pic.category != "numeric":
                raise CopybookError(f"{what} {it.usage_text}): a {it.usage_text} item needs a "
                                    f"numeric picture (9, S, V, P)")
            if usage == "COMP-3":
                it.size = pic.digits // 2 + 1
            else:
                it.size = _binary_size(pic.digits, options.cobrix_binary, what, it.usage_text)
            continue
        if usage == "NATIONAL":
            if pic.category != "national":
                raise CopybookError(f"{what} NATIONAL): only PIC N items can be USAGE NATIONAL "
                                    f"here (national numbers are not supported)")
            it.size = 2 * pic.chars
            continue
        if usage == "DISPLAY-1":
            if pic.category not in ("national", "dbcs"):
                raise CopybookError(f"{what} DISPLAY-1): DISPLAY-1 needs PIC G or N")
            it.size = 2 * pic.chars
            continue
        if pic.category in ("national", "dbcs"):
            it.size = 2 * pic.chars
        elif pic.category == "numeric":
            separate = bool(it.sign and it.sign[1])
            if it.sign and not pic.signed:  # IBM wants S; Cobrix's copybooks omit it
                it.pic = pic = Pic(pic.text, pic.category, pic.chars, pic.digits, pic.scale, True)
            it.size = pic.chars + (1 if separate else 0)
        else:
            it.size = pic.chars
        if pic.digits > 38 and pic.category == "numeric":
            raise CopybookError(f"{what}): more than 38 digits")


def _binary_size(digits: int, cobrix: bool, what: str, usage: str) -> int:
    for limit, size in _BINARY_SIZES:
        if digits <= limit:
            return size
    if cobrix and digits <= 38:
        # Cobrix: the bytes of the largest value plus a sign bit (19-20 digits: 9, 28: 12, 37: 16)
        return -(-((10 ** digits - 1).bit_length() + 1) // 8)
    raise CopybookError(
        f"{what} {usage}): {digits} digits; IBM binary items hold at most 18 "
        f"(Cobrix reads 19-38 digits in 9-16 bytes: --cobrix-binary-sizes)")


def _alignment(it: Item) -> int:
    if not it.sync or it.is_group:
        return 1
    if it.usage in ("COMP", "COMP-5") and it.size in (2, 4, 8):
        return it.size
    if it.usage == "COMP-1":
        return 4
    if it.usage == "COMP-2":
        return 8
    return 1


def _max_alignment(it: Item) -> int:
    return max((_alignment(x) for x in it.walk()), default=1)


def _place(item: Item, offset: int, root: Item) -> None:
    """Offsets (relative to the 01 level) and sizes of a subtree."""
    item.offset = offset
    if not item.is_group:
        a = _alignment(item)
        if a > 1 and item.offset % a:
            item.offset += a - item.offset % a
        return
    base: Item | None = None
    chain: list[Item] = []
    chain_end = offset
    for child in item.children:
        if child.redefines is not None:
            if base is None or (base.name or "").upper() != child.redefines.upper():
                raise CopybookError(
                    f"{child.where}: {child.cobol_name} REDEFINES {child.redefines}: it must "
                    f"name the item just before it at the same level (or what that one redefines)")
            if child.occurs is not None:
                raise CopybookError(f"{child.where}: a REDEFINES item cannot have OCCURS")
            _place(child, base.offset, root)
            chain.append(child)
            chain_end = max(chain_end, child.offset + child.total)
            continue
        _close_chain(chain, chain_end)
        _place(child, chain_end, root)
        base, chain = child, [child]
        chain_end = child.offset + child.total
    _close_chain(chain, chain_end)
    end = chain_end
    if item.occurs and item.occurs > 1:
        a = _max_alignment(item)
        size = end - item.offset
        if a > 1 and size % a:
            end += a - size % a
    item.size = end - item.offset


def _close_chain(chain: list[Item], end: int) -> None:
    if not chain:
        return
    start = chain[0].offset
    for c in chain:
        c.area = end - start


# -- names, fields, structure -----------------------------------------------------------------

def _flat(name: str) -> str:
    return name.replace("-", "_")


@dataclass
class _Leaf:
    item: Item
    path: list[Item]        # named ancestors (record excluded), outermost first
    base: str = ""          # the unique flat base name
    indexes: tuple[int, ...] = ()


def _leaves(root: Item) -> list[_Leaf]:
    out: list[_Leaf] = []

    def visit(it: Item, path: list[Item]):
        if it.name is None and not it.is_group:
            return  # FILLER
        inner = path + ([it] if it is not root else [])
        if it.is_group:
            for c in it.children:
                visit(c, inner if it.name is not None or it is root else path)
        else:
            out.append(_Leaf(it, path))

    visit(root, [])
    return out


def _unique_names(leaves: list[_Leaf], root: Item) -> None:
    depth = {id(lf): 0 for lf in leaves}

    def name_of(lf: _Leaf) -> str:
        d = depth[id(lf)]
        parts = [a.name for a in lf.path[len(lf.path) - d:]] if d else []
        return "_".join(_flat(p) for p in [*parts, lf.item.name])

    while True:
        groups: dict[str, list[_Leaf]] = {}
        for lf in leaves:
            groups.setdefault(name_of(lf), []).append(lf)
        clash = [g for g in groups.values() if len(g) > 1]
        if not clash:
            break
        moved = False
        for g in clash:
            for lf in g:
                if depth[id(lf)] < len(lf.path):
                    depth[id(lf)] += 1
                    moved = True
        if not moved:
            g = clash[0]
            raise CopybookError(f"{g[1].item.where}: {g[1].item.cobol_name} is defined twice "
                                f"in the same group (first on line {g[0].item.line})")
    for lf in leaves:
        lf.base = name_of(lf)
        if not lf.base[0].isalpha():
            lf.base = "F_" + lf.base


def _occurs_chain(lf: _Leaf) -> list[Item]:
    return [a for a in [*lf.path, lf.item] if a.occurs]


@dataclass
class _Ctx:
    options: CopybookOptions
    encoding: str
    ebcdic: bool
    dbcs_encoding: str | None
    columns: dict[int, str]   # id(leaf item) → flat base name


def _counter_column(root: Item, item: Item, ctx: _Ctx) -> str:
    name = item.depending_on or ""
    hits = [x for x in root.walk() if x.name and x.name.upper() == name.upper()]
    if not hits:
        raise CopybookError(f"{item.where}: OCCURS DEPENDING ON {name}: no such item in the record")
    counter = hits[0]
    if counter.is_group or counter.pic is None or counter.pic.category != "numeric":
        raise CopybookError(f"{item.where}: OCCURS DEPENDING ON {name}: the counter must be a "
                            f"numeric elementary item")
    if counter.occurs or any(a.occurs for a in _ancestors(counter)):
        raise CopybookError(f"{item.where}: OCCURS DEPENDING ON {name}: the counter is inside "
                            f"an OCCURS")
    return ctx.columns[id(counter)]


def _ancestors(it: Item):
    p = it.parent
    while p is not None:
        yield p
        p = p.parent


def _field_type(it: Item, ctx: _Ctx) -> dict:
    usage = it.usage or "DISPLAY"
    pic = it.pic
    out: dict = {}
    if usage in ("COMP-1", "COMP-2"):
        fmt = ctx.options.float_format
        return {"type": "float"} if fmt == "ibm" else {"type": "float", "format": fmt}
    assert pic is not None
    if usage in ("COMP", "COMP-5"):
        if it.size not in (2, 4, 8):
            out["type"] = "bytes"  # Cobrix's 9/16-byte binaries: raw bytes (no kernel type)
            return out
        out["type"] = "binary"
        if usage == "COMP":
            out["digits"] = pic.digits
        out["signed"] = pic.signed
        if pic.scale:
            out["scale"] = pic.scale
        return out
    if usage == "COMP-3":
        out.update(type="packed", signed=pic.signed)
        if pic.scale:
            out["scale"] = pic.scale
        return out
    if pic.category in ("national", "dbcs"):
        if pic.category == "dbcs" or usage == "DISPLAY-1":
            utf16 = False
        elif usage == "NATIONAL":
            utf16 = True
        else:  # PIC N without USAGE: NATIONAL (UTF-16) unless the compiler's NSYMBOL(DBCS)
            utf16 = (ctx.options.pic_n or "utf16") == "utf16"
        if utf16:
            return {"type": "national"}
        if ctx.dbcs_encoding is None:
            raise CopybookError(
                f"{it.where}: {it.cobol_name} (PIC {it.picture}) is double-byte: give the "
                f"double-byte encoding (--dbcs-encoding ibm930|ibm939|jef|...) or --pic-n utf16")
        out["type"] = "dbcs"
        if ctx.dbcs_encoding != ctx.encoding:
            out["encoding"] = ctx.dbcs_encoding
        return out
    if pic.category == "alphanumeric":
        # JUSTIFIED RIGHT: the value is padded on the left
        return {"type": "text", "trim": "both"} if it.justified else {"type": "text"}
    if pic.category == "edited":
        if ctx.options.blank_numbers != "null":
            out["blank"] = "error"
        if pic.text.replace(" ", "").upper().startswith("S"):
            # S with editing symbols (Cobrix reads S9(3).99 as an explicit point with an
            # overpunched last digit): not a COBOL picture, no kernel type: raw bytes
            return {"type": "bytes"}
        return {"type": "edited", **out}
    out.update(type="zoned", signed=pic.signed, zone="ebcdic" if ctx.ebcdic else "ascii")
    if ctx.options.blank_numbers != "null":
        out["blank"] = "error"  # spaces are no value of a PIC 9 item
    if not pic.signed:
        out["strict_sign"] = True  # an unsigned item's last digit has no sign (zone F / 3)
    if pic.scale:
        out["scale"] = pic.scale
    if it.sign is not None:
        if it.sign[0] == "leading":
            out["sign_position"] = "leading"
        if it.sign[1]:
            out["sign_separate"] = True
    return out


def _tolerate_open_redefines(fields: list[dict]) -> list[dict]:
    """Fields sharing bytes (REDEFINES alternatives that no record kind chooses between) get
    ``on_error: null``: a record holds one of the alternatives, so the others' bytes need not
    decode; their errors are counted as tolerated, their values null."""
    spans = sorted((f["offset"], f["offset"] + f["length"], i) for i, f in enumerate(fields)
                   if f.get("type") != "filler")
    shared: set[int] = set()
    end, owner = -1, -1
    for a, b, i in spans:
        if a < end:
            shared.update((i, owner))
        if b > end:
            end, owner = b, i
    for i in sorted(shared):
        f = fields[i]
        if "on_error" not in f:
            fields[i] = {**{k: v for k, v in f.items() if k not in _META_KEYS},
                         "on_error": "null", **{k: v for k, v in f.items() if k in _META_KEYS}}
    return fields


def _is_ebcdic(encoding: str) -> bool:
    return encoding not in ("cp932", "jips-j")


def _canonical(encoding: str, what: str) -> str:
    from ikou.kernels import EncodingError, canonical_encoding

    try:
        return canonical_encoding(encoding)
    except EncodingError as exc:
        raise CopybookError(f"{what}: {exc}") from None


class _Builder:
    """One record → fields and structure."""

    def __init__(self, root: Item, ctx: _Ctx):
        self.root = root
        self.ctx = ctx
        leaves = _leaves(root)
        _unique_names(leaves, root)
        for lf in leaves:
            ctx.columns[id(lf.item)] = lf.base
        self.leaves = {id(lf.item): lf for lf in leaves}

    def fields(self, keep) -> list[dict]:
        """Flat fields of the items ``keep(item)`` accepts, in copybook (byte) order."""
        out: list[dict] = []
        self._fields(self.root, keep, (), 0, None, out)
        return _tolerate_open_redefines(out)

    def _fields(self, it: Item, keep, idx: tuple[int, ...], shift: int, redef, out,
                odo: bool = False) -> None:
        if not keep(it):
            return
        odo = odo or it.depending_on is not None
        if it is not self.root and it.redefines is not None:
            redef = (_flat(it.redefines), _flat(it.name or "FILLER"))
        if it.name is None and not it.is_group:
            return
        n = it.occurs or 0
        reps = range(1, n + 1) if n else [None]
        for k in reps:
            ix = idx + ((k,) if k else ())
            sh = shift + ((k - 1) * it.size if k else 0)
            if it.is_group:
                for c in it.children:
                    self._fields(c, keep, ix, sh, redef, out, odo)
            else:
                f = self._field(it, ix, sh, redef)
                if odo:
                    # the slots past the counter are not part of the record: their bytes are
                    # whatever was left there; errors are reported (tolerated), values null
                    f = {**{k: v for k, v in f.items() if k not in _META_KEYS},
                         "on_error": "null", **{k: v for k, v in f.items() if k in _META_KEYS}}
                out.append(f)

    def _field(self, it: Item, ix, shift, redef) -> dict:
        lf = self.leaves[id(it)]
        name = lf.base + "".join(f"_{i}" for i in ix)
        d: dict = {"name": name, "offset": it.offset + shift, "length": it.size}
        d.update(_field_type(it, self.ctx))
        if it.label:
            d["label"] = it.label
        if redef is not None:
            d["redefines"], d["alternative"] = redef
        if it.values:
            d["values"] = it.values
        if it.picture is not None:
            d["picture"] = it.picture
        if it.usage_text is not None:
            d["usage"] = it.usage_text.upper()
        return d

    def structure(self, keep) -> list[dict]:
        return [n for c in self.root.children if (n := self._node(c, keep)) is not None]

    def _node(self, it: Item, keep) -> dict | None:
        if not keep(it) or it.name is None:
            return None  # FILLER items and groups (with what they hold) are not in the tree
        node: dict = {"name": _flat(it.name)}
        if it.is_group:
            node["children"] = [n for c in it.children if (n := self._node(c, keep)) is not None]
        else:
            node["column"] = self.leaves[id(it)].base
        if it.occurs:
            node["occurs"] = it.occurs
        if it.depending_on:
            node["depending_on"] = _counter_column(self.root, it, self.ctx)
        if it.redefines:
            node["redefines"] = _flat(it.redefines)
        if it.is_group and it.values:
            node["values"] = it.values
        return node


_META_KEYS = ("label", "redefines", "alternative", "values", "picture", "usage")


def _alternatives(root: Item) -> dict[str, Item]:
    """Items that are part of a REDEFINES chain (the redefined one included), by name."""
    out: dict[str, Item] = {}
    for it in root.walk():
        for i, c in enumerate(it.children):
            if c.redefines is not None and c.name:
                out[c.name.upper()] = c
                base = next((b for b in reversed(it.children[:i]) if b.redefines is None), None)
                if base is not None and base.name:
                    out[base.name.upper()] = base
    return out


def _chain_of(it: Item) -> list[Item]:
    parent = it.parent
    if parent is None:
        return [it]
    kids = parent.children
    i = kids.index(it)
    while i > 0 and kids[i].redefines is not None:
        i -= 1
    j = i + 1
    while j < len(kids) and kids[j].redefines is not None:
        j += 1
    return kids[i:j]


def copybook_layout(path: str | Path, options: CopybookOptions | None = None,
                    text: str | None = None) -> dict:
    """The layout document of a copybook (a dict as a layout YAML file holds it)."""
    options = options or CopybookOptions()
    path = Path(path)
    if text is None:
        text = _read(path)
    roots = parse_copybook(text, str(path), options)
    encoding = _canonical(options.encoding, str(path))
    dbcs = options.dbcs_encoding
    if dbcs is not None:
        dbcs = _canonical(dbcs, str(path))
    else:
        from ikou.kernels import get_encoding

        if encoding != "cp932" and get_encoding(encoding).mixed:
            dbcs = encoding
        elif encoding == "cp932":
            dbcs = None
    ctx = _Ctx(options, encoding, _is_ebcdic(encoding), dbcs, {})
    builders = {id(r): _Builder(r, ctx) for r in roots}
    name = options.name or re.sub(r"[^A-Za-z0-9_]", "_", path.stem) or "copybook"
    if not name[0].isalpha():
        name = "c_" + name
    doc: dict = {"name": name}
    doc["encoding"] = encoding
    if options.record_format and options.record_format.upper() != "F":
        doc["record_format"] = options.record_format.upper()
    doc["record_length"] = max(r.size for r in roots)

    if not options.kinds:
        if len(roots) > 1:
            names = ", ".join(r.cobol_name for r in roots)
            raise CopybookError(
                f"{path}: {len(roots)} records ({names}): say which is which kind "
                f"(--record-type FIELD --kind NAME=CODE:RECORD, or one --kind data=RECORD)")
        b = builders[id(roots[0])]
        doc["fields"] = b.fields(lambda it: True)
        doc["structure"] = b.structure(lambda it: True)
        _check_columns(doc["fields"], str(path))
        return doc

    by_record = {r.cobol_name.upper(): r for r in roots}
    alts = {}
    for r in roots:
        for k, v in _alternatives(r).items():
            alts.setdefault(k, (r, v))
    selected_chains: dict[int, set[int]] = {}
    kind_specs = []
    for kname, code, names in options.kinds:
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", kname):
            raise CopybookError(f"{path}: kind name {kname!r} must be an identifier")
        records, items = set(), []
        for n in names:
            key = n.replace("_", "-").upper()
            key2 = n.upper()
            if key in by_record or key2 in by_record:
                records.add(id(by_record.get(key) or by_record[key2]))
            elif key in alts or key2 in alts:
                r, it = alts.get(key) or alts[key2]
                records.add(id(r))
                items.append(it)
                selected_chains.setdefault(id(_chain_of(it)[0]), set())
            else:
                raise CopybookError(f"{path}: kind {kname}: {n} is neither a record (01) nor a "
                                    f"REDEFINES alternative of the copybook")
        if not records:
            raise CopybookError(f"{path}: kind {kname}: no record or alternative given")
        if len(records) > 1:
            raise CopybookError(f"{path}: kind {kname}: its alternatives lie in different records")
        kind_specs.append((kname, code, next(iter(records)), items))
    kinds_doc: dict = {}
    rt = None
    if options.record_type:
        rt = _record_type_field(options.record_type, roots, builders, path)
        doc["record_type"] = {"offset": rt[0], "length": rt[1]}
    elif len(kind_specs) > 1:
        raise CopybookError(f"{path}: several kinds need --record-type FIELD (the field whose "
                            f"value tells them apart)")
    for kname, code, rid, items in kind_specs:
        root = next(r for r in roots if id(r) == rid)
        chosen = {id(x) for x in items}
        dropped: set[int] = set()
        for x in root.walk():
            if x.parent is not None and x.redefines is None and any(
                    c.redefines for c in x.parent.children):
                chain = _chain_of(x)
                if id(chain[0]) in selected_chains:
                    for member in chain:
                        if id(member) not in chosen:
                            dropped.add(id(member))

        def keep(it, dropped=dropped):
            return id(it) not in dropped

        b = builders[rid]
        kd: dict = {}
        if rt is not None:
            if code is None:
                raise CopybookError(f"{path}: kind {kname}: give its record-type code "
                                    f"(--kind {kname}=CODE:...)")
            kd["code"] = code
        elif code:
            raise CopybookError(f"{path}: kind {kname}: a code needs --record-type")
        kd["fields"] = b.fields(keep)
        if kname == "trailer" and options.count_field:
            want = _flat(options.count_field).upper()
            hit = [f["name"] for f in kd["fields"] if f["name"].upper() == want]
            if not hit:
                raise CopybookError(f"{path}: count field {options.count_field} is not a field "
                                    f"of the trailer kind")
            kd["count_field"] = hit[0]
        kd["structure"] = b.structure(keep)
        _check_columns(kd["fields"], str(path))
        if len(kind_specs) == 1 and rt is None:
            doc["record_length"] = root.size
            doc["fields"] = kd["fields"]
            doc["structure"] = kd["structure"]
            return doc
        kinds_doc[kname] = kd
    doc["kinds"] = kinds_doc
    return doc


def _record_type_field(name: str, roots, builders, path) -> tuple[int, int]:
    found = None
    want = _flat(name).upper()
    for r in roots:
        for lf in builders[id(r)].leaves.values():
            if lf.base.upper() == want or _flat(lf.item.name or "").upper() == want:
                it = lf.item
                if it.occurs or any(a.occurs for a in _ancestors(it)):
                    raise CopybookError(f"{it.where}: the record-type field {name} is inside an "
                                        f"OCCURS")
                if (it.usage or "DISPLAY") != "DISPLAY" or it.pic is None or it.pic.category not in (
                        "alphanumeric", "numeric"):
                    raise CopybookError(f"{it.where}: the record-type field {name} must be "
                                        f"DISPLAY (PIC X or 9)")
                here = (it.offset, it.size)
                if found is not None and found != here:
                    raise CopybookError(f"{it.where}: the record-type field {name} lies at "
                                        f"different bytes in different records")
                found = here
    if found is None:
        raise CopybookError(f"{path}: record-type field {name} is not in the copybook")
    return found


def _check_columns(fields: list[dict], path: str) -> None:
    seen: dict[str, dict] = {}
    for f in fields:
        if f["name"] in seen:
            raise CopybookError(f"{path}: the column {f['name']} would be produced twice "
                                f"(an OCCURS element and another field of that name)")
        seen[f["name"]] = f


# -- YAML ---------------------------------------------------------------------------------------

def dump_layout(doc: dict, copybook: str | Path, text: bytes | None = None) -> str:
    """The layout as YAML text, with a header naming the copybook and its sha256 (the same
    bytes on every run)."""
    import yaml

    data = Path(copybook).read_bytes() if text is None else text
    digest = hashlib.sha256(data).hexdigest()
    header = (f"# ikou layout imported from the COBOL copybook {Path(copybook).name}\n"
              f"# copybook sha256: {digest}\n"
              f"# written by `ikou layout import`; edit the copybook and import again, or\n"
              f"# name it in a layout's 'copybook:' key to import it at load time\n")
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False,
                          width=100, indent=2)
    return header + body


# -- a layout's copybook: key -----------------------------------------------------------------

#: ``copybook_options:`` keys (the command's options)
OPTION_KEYS = ("encoding", "pic_n", "dbcs_encoding", "record_type", "kinds", "count_field",
               "copy_path", "source_format", "cobrix_binary_sizes", "float_format",
               "blank_numbers")
#: keys a layout may give next to ``copybook:`` (they win over the imported ones)
_REFERENCE_KEYS = {"copybook", "copybook_options", "name", "label", "description", "encoding",
                   "record_separator", "record_format", "rdw", "bdw", "extra_bytes", "shape",
                   "occurs_shrink",
                   "fields"}


def parse_kind(text: str) -> tuple[str, str | None, tuple[str, ...]]:
    """``NAME=CODE:ALT[,ALT]`` (or ``NAME=ALT`` for a single kind without a record type)."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise CopybookError(f"kind {text!r}: expected NAME=CODE:ALTERNATIVE[,ALTERNATIVE]")
    code, sep, alts = rest.rpartition(":")
    if not sep:
        code, alts = None, rest
    names = tuple(a.strip() for a in alts.split(",") if a.strip())
    if not names:
        raise CopybookError(f"kind {text!r}: no record or alternative named")
    return name.strip(), code, names


def options_from_mapping(opts, at: str, base: Path) -> CopybookOptions:
    """``copybook_options:`` of a layout → :class:`CopybookOptions` (paths relative to
    ``base``)."""
    if opts is None:
        opts = {}
    if not isinstance(opts, dict):
        raise CopybookError(f"{at}: copybook_options must be a mapping")
    extra = sorted(str(k) for k in opts if k not in OPTION_KEYS)
    if extra:
        raise CopybookError(f"{at}: unknown copybook option(s) {', '.join(extra)} "
                            f"(allowed: {', '.join(OPTION_KEYS)})")
    kinds = []
    raw = opts.get("kinds") or {}
    if not isinstance(raw, dict):
        raise CopybookError(f"{at}: copybook_options kinds must map a kind name to "
                            f"{{code: CODE, alternatives: [NAME, ...]}}")
    for kname, spec in raw.items():
        if isinstance(spec, str):
            kinds.append(parse_kind(f"{kname}={spec}"))
            continue
        if not isinstance(spec, dict) or "alternatives" not in spec:
            raise CopybookError(f"{at}: kind {kname}: give code and alternatives")
        alts = spec["alternatives"]
        alts = [alts] if isinstance(alts, str) else list(alts)
        code = spec.get("code")
        kinds.append((str(kname), None if code is None else str(code),
                      tuple(str(a) for a in alts)))
    copy_path = opts.get("copy_path") or []
    if isinstance(copy_path, str):
        copy_path = [copy_path]
    float_format = opts.get("float_format", "ibm")
    if float_format not in ("ibm", "ieee"):
        raise CopybookError(f"{at}: float_format must be ibm or ieee, got {float_format!r}")
    blank_numbers = opts.get("blank_numbers", "error")
    if blank_numbers not in ("error", "null"):
        raise CopybookError(f"{at}: blank_numbers must be error or null, got {blank_numbers!r}")
    pic_n = opts.get("pic_n")
    if pic_n not in (None, "dbcs", "utf16"):
        raise CopybookError(f"{at}: pic_n must be dbcs or utf16, got {pic_n!r}")
    return CopybookOptions(
        source_format=opts.get("source_format"),
        copy_path=tuple(str(base / p) for p in copy_path),
        cobrix_binary=bool(opts.get("cobrix_binary_sizes", False)),
        float_format=float_format,
        blank_numbers=blank_numbers,
        encoding=str(opts.get("encoding", "cp037")),
        pic_n=pic_n,
        dbcs_encoding=opts.get("dbcs_encoding"),
        record_type=opts.get("record_type"),
        kinds=tuple(kinds),
        count_field=opts.get("count_field"),
    )


def layout_from_reference(doc: dict, path: str | Path) -> dict:
    """A layout document with ``copybook:`` → the imported layout document: the copybook read
    now (relative to the layout file), the layout's own keys and field overrides applied."""
    from ikou.pipeline.config.yamlio import where

    at = where(path, doc)
    extra = sorted(str(k) for k in doc if k not in _REFERENCE_KEYS)
    if extra:
        raise CopybookError(f"{at}: key(s) {', '.join(extra)} cannot be given with 'copybook:' "
                            f"(allowed: {', '.join(sorted(_REFERENCE_KEYS))})")
    base = Path(path).parent
    ref = doc["copybook"]
    if not isinstance(ref, str) or not ref:
        raise CopybookError(f"{at}: 'copybook' must be the path of a copybook")
    opts_doc = dict(doc.get("copybook_options") or {})
    if "encoding" in doc and "encoding" not in opts_doc:
        opts_doc["encoding"] = doc["encoding"]
    options = options_from_mapping(opts_doc, where(path, doc.get("copybook_options")) or at, base)
    name = doc.get("name")
    options = CopybookOptions(**{**options.__dict__, "name": name if isinstance(name, str)
                                 else None})
    imported = copybook_layout(base / ref, options)
    for key in ("label", "description", "record_separator", "record_format", "rdw", "bdw",
                "extra_bytes", "shape", "occurs_shrink"):
        if key in doc:
            imported[key] = doc[key]
    overrides = doc.get("fields") or []
    if not isinstance(overrides, list):
        raise CopybookError(f"{where(path, overrides)}: 'fields' next to 'copybook:' must be a "
                            f"list of field overrides (name + the keys to change)")
    field_lists = ([imported["fields"]] if "fields" in imported
                   else [k["fields"] for k in imported["kinds"].values()])
    for ov in overrides:
        if not isinstance(ov, dict) or not isinstance(ov.get("name"), str):
            raise CopybookError(f"{where(path, ov)}: a field override needs the field's name")
        hit = False
        for fields in field_lists:
            for i, f in enumerate(fields):
                if f["name"] == ov["name"]:
                    fields[i] = {**f, **ov}
                    hit = True
        if not hit:
            raise CopybookError(f"{where(path, ov)}: field override {ov['name']!r}: the copybook "
                                f"{ref} has no such field")
    return imported
