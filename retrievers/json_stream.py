"""Stream the elements of one huge top-level JSON array or object without loading the whole file.

`json.load` needs the whole document in memory; a corpus shipped as one JSON array (or HippoRAG's
{title: [sentences]} object) can be gigabytes. `JsonStream` decodes one element at a time from a
growing buffer and knows the line of each element, so errors name "file:line".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


class JsonStream:
    """Reads the elements of one top-level JSON array or object without loading the whole file."""

    def __init__(self, path: Path, error: type[ValueError] = ValueError):
        self.path = path
        self.error = error  # the exception class raised on malformed JSON (with "file:line" in the message)
        self._handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed in `close`
        self._buffer, self._pos, self._eof, self._lines_before = "", 0, False, 0
        self._decoder = json.JSONDecoder()

    def close(self) -> None:
        self._handle.close()

    def where(self) -> str:
        return f"{self.path}:{self._lines_before + self._buffer.count(chr(10), 0, self._pos) + 1}"

    def _fill(self, size: int = _CHUNK) -> bool:
        if self._eof:
            return False
        chunk = self._handle.read(size)
        self._lines_before += self._buffer.count("\n", 0, self._pos)
        self._buffer, self._pos = self._buffer[self._pos :] + chunk, 0
        self._eof = not chunk
        return bool(chunk)

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end of the file)."""
        while True:
            while self._pos < len(self._buffer) and self._buffer[self._pos].isspace():
                self._pos += 1
            if self._pos < len(self._buffer) or not self._fill():
                return self._buffer[self._pos] if self._pos < len(self._buffer) else ""

    def expect(self, chars: str) -> str:
        char = self.peek()
        if char == "" or char not in chars:
            found = repr(char) if char else "the end of the file"
            raise self.error(f"{self.where()}: expected one of {list(chars)}, found {found}")
        self._pos += 1
        return char

    def value(self) -> Any:
        self.peek()
        size = _CHUNK
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._pos)
                if end < len(self._buffer) or self._eof:  # a number cut at the buffer's end is not final
                    self._pos = end
                    return value
            except json.JSONDecodeError as exc:
                if self._eof:
                    raise self.error(f"{self.where()}: not valid JSON ({exc.msg})") from exc
            size *= 2  # grow the read so a huge value costs O(n log n), not O(n^2)
            self._fill(size)

    def items(self) -> Iterator[tuple[str | None, Any, str]]:
        """(key or None, value, where) for each element of the top-level array or object."""
        opener = self.expect("[{")
        closer = "]" if opener == "[" else "}"
        if self.peek() == closer:
            return
        while True:
            self.peek()  # skip whitespace, so `where` is the element's own line
            where = self.where()
            key = None
            if opener == "{":
                key = self.value()
                if not isinstance(key, str):
                    raise self.error(f"{where}: expected an object key")
                self.expect(":")
            yield key, self.value(), where
            if self.expect("," + closer) == closer:
                return


__all__ = ["JsonStream"]
