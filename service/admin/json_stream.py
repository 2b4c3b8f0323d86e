"""Reading an import document one record at a time, strictly, in memory that does not grow.

The document is one JSON object of lists. The top level is walked here; each record (an element
of a list) is decoded by the standard library's C decoder from a buffer that holds little more
than that record. Strict means: UTF-8 only, a key repeated inside one object, `NaN` and
`Infinity` are errors, and so are nesting too deep and integers too long to read.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, NoReturn

CHUNK = 1 << 20
# A record longer than this is refused: it bounds the buffer (real records are under 10 kB).
MAX_RECORD = 16 << 20
_SPACE = re.compile(r"[ \t\n\r]*")


class NotJson(ValueError):
    """The text is not the strict JSON an import document must be; the message says where."""


@dataclass(frozen=True)
class Item:
    """One event of the walk: a record of a list, or a top-level value that is not a list."""

    key: str
    index: int  # the record's position in its list; -1 for a top-level value or an empty list
    value: Any


class _Strict(json.JSONDecoder):
    def __init__(self) -> None:
        super().__init__(object_pairs_hook=_unique_keys, parse_constant=_no_constant)


class DocumentReader:
    """Walks `source` (bytes), yielding each list's records; NotJson when the text is not JSON."""

    def __init__(self, source: BinaryIO, lists: Sequence[str]) -> None:
        self._source = source
        self._lists = lists
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._scan = _Strict().raw_decode
        self._text = ""
        self._at = 0  # position in _text
        self._eof = False
        self._line = 1  # line of _text[0]
        self._line_start = 0  # position of that line's start relative to _text[0] (<= 0)
        self.bytes_read = 0

    def items(self) -> Iterator[Item]:
        """Each top-level key's records (or its value, when that is not a list), in order."""
        first = self._peek()
        if first != "{":
            if first != "[":  # an array is refused unread: it may nest without end
                self._value()
                self._end()
            kind = "an array" if first == "[" else "a single value"
            raise NotJson(
                f"the document must be a JSON object with the lists {', '.join(self._lists)}, "
                f"not {kind}"
            )
        self._at += 1
        seen: set[str] = set()
        if self._peek() == "}":
            self._at += 1
        else:
            while True:
                key = self._key(seen)
                if self._peek() == "[":
                    self._at += 1
                    yield from self._records(key)
                else:
                    yield Item(key, -1, self._value())
                if self._delimiter("}"):
                    break
        self._end()

    def _records(self, key: str) -> Iterator[Item]:
        if self._peek() == "]":
            self._at += 1
            yield Item(key, -1, [])
            return
        index = 0
        while True:
            yield Item(key, index, self._value())
            index += 1
            if self._delimiter("]"):
                return

    def _key(self, seen: set[str]) -> str:
        if self._peek() != '"':
            self._fail("Expecting property name enclosed in double quotes")
        key = self._value()
        if key in seen:
            raise NotJson(f"the document is not JSON: the key {key!r} appears twice in one object")
        seen.add(key)
        if self._peek() != ":":
            self._fail("Expecting ':' delimiter")
        self._at += 1
        return str(key)

    def _delimiter(self, closing: str) -> bool:
        """True after `closing`, False after a comma; NotJson for anything else."""
        at = self._at
        character = self._text[at] if at < len(self._text) else self._peek()
        if character in " \t\n\r":
            character = self._peek()
        if character == ",":
            self._at += 1
            return False
        if character == closing:
            self._at += 1
            return True
        self._fail("Expecting ',' delimiter")

    def _value(self) -> Any:
        self._peek()
        while True:
            start = self._at
            try:
                value, end = self._scan(self._text, start)
            except json.JSONDecodeError as error:
                truncated = (
                    error.msg.startswith("Unterminated") or error.pos >= len(self._text) - 16
                )
                if not (truncated and self._more(start)):
                    self._fail(error.msg, error.pos)
                continue
            except _NotStrict as error:
                raise NotJson(f"the document is not JSON: {error}") from None
            except RecursionError:
                self._fail("Arrays or objects nested too deeply", start)
            except ValueError:  # int() refuses integers longer than sys.get_int_max_str_digits()
                self._fail(f"An integer of more than {sys.get_int_max_str_digits()} digits", start)
            # A value that ends near where the text does may go on ("1." of 1.5): read on to know.
            if end + 3 < len(self._text) or not self._more(start):
                self._at = end
                return value

    def _peek(self) -> str:
        """The next character that is not white space ('' at the end), read as needed."""
        while True:
            self._at = _SPACE.match(self._text, self._at).end()  # type: ignore[union-attr]
            if self._at < len(self._text):
                return self._text[self._at]
            if not self._more(self._at):
                return ""

    def _more(self, keep: int) -> bool:
        """Read another chunk, keeping the text from `keep` on; False at the end of the source."""
        if self._eof:
            return False
        if len(self._text) - keep > MAX_RECORD:
            self._fail(f"A record longer than {MAX_RECORD >> 20} MiB", keep)
        consumed = self._text[:keep]
        newlines = consumed.count("\n")
        if newlines:
            self._line += newlines
            self._line_start = consumed.rindex("\n") + 1
        self._line_start -= keep
        chunk = self._source.read(CHUNK)
        self.bytes_read += len(chunk)
        self._eof = not chunk
        try:
            text = self._decoder.decode(chunk, final=self._eof)
        except UnicodeDecodeError:
            raise NotJson("the document is not UTF-8 text") from None
        self._text = self._text[keep:] + text
        self._at -= keep
        return True

    def _end(self) -> None:
        if self._peek():
            self._fail("Extra data")

    def _fail(self, message: str, position: int | None = None) -> NoReturn:
        at = self._at if position is None else position
        line = self._line + self._text.count("\n", 0, at)
        newline = self._text.rfind("\n", 0, at)
        column = at - (newline + 1 if newline >= 0 else self._line_start) + 1
        raise NotJson(f"the document is not JSON: {message} (line {line}, column {column})")


class _NotStrict(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of repeated keys silently; an import must not guess which was meant.
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _NotStrict(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return mapping


def _no_constant(name: str) -> None:
    raise _NotStrict(f"{name} is not a JSON number")
