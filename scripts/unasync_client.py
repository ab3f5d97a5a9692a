"""Write ``src/hora/client/_sync.py`` (``hora.Client``) from ``_async.py`` (``AsyncClient``).

The HTTP client's operations are written once, for asyncio; the synchronous client is the
same text with the asynchronous words taken out, as httpcore does with unasync. Run it after
editing ``_async.py``; ``--check`` exits 1 (and says so) when ``_sync.py`` is out of date,
which ``tests/api/test_client_generated.py`` does too.

    python scripts/unasync_client.py [--check]
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "hora" / "client"
SOURCE = PACKAGE / "_async.py"
TARGET = PACKAGE / "_sync.py"

#: Whole-word replacements, applied in this order (the longer names first).
WORDS = [
    ("AsyncBaseTransport", "BaseTransport"),
    ("AsyncClient", "Client"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("aclose", "close"),
]
#: Plain-text replacements (phrases and type spellings).
PHRASES = [
    ("async def ", "def "),
    ("async with ", "with "),
    ("await ", ""),
    ("Awaitable[None]", "None"),
    ("Awaitable, ", ""),
    ("import asyncio\n", "import time\n"),
    ("asyncio.sleep", "time.sleep"),
]
#: The docstrings that say which of the two a file or class is, replaced last (so their
#: new text is not rewritten by the words above).
DOCS = [
    ("every operation of the HTTP API, written once, for asyncio.\n\n"
     "This is the hand-written implementation; ``_sync.py`` (``Client``) is generated from "
     "it by\n",
     "every operation of the HTTP API, for synchronous code.\n\n"
     "This file is generated from ``_async.py`` (``AsyncClient``, written by hand) by\n"),
    ("The HTTP API from asyncio code; see the package docstring. ``Client`` is the same\n"
     "    API from synchronous code, generated from this class by",
     "The HTTP API from synchronous code; see the package docstring. ``AsyncClient`` is "
     "the\n    same API for asyncio, and this class is generated from it by"),
]
#: A source line ending with this marker has no synchronous counterpart.
REMOVE = "# unasync: remove"
HEADER = ("# Generated from _async.py by scripts/unasync_client.py: do not edit; edit _async.py\n"
          "# and run the script again.\n")


def unasync(text: str) -> str:
    """The synchronous twin of the asynchronous client's source."""
    lines = [line for line in text.splitlines(keepends=True) if not line.rstrip().endswith(REMOVE)]
    source = "".join(lines)
    opens, inside = _brackets(source)
    out: list[str] = []
    shift = 0
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        new = _replace(line)
        if number in opens:  # the next lines are aligned under the bracket it leaves open
            column = opens[number]
            shift = column - len(_replace(line[:column]))
        elif number not in inside:
            shift = 0
        if shift and number in inside and line[:shift].isspace():
            new = new[shift:]
        out.append(new)
    # A removed line leaves two blank lines in a class body: one is enough.
    text = re.sub(r"\n\n\n(    \S)", r"\n\n\1", "".join(out))
    for old, new in DOCS:
        if old not in text:
            raise SystemExit(f"unasync: a docstring changed; update DOCS: {old[:60]!r}")
        text = text.replace(old, new)
    return HEADER + text


def _replace(text: str) -> str:
    for old, new in PHRASES:
        text = text.replace(old, new)
    for old, new in WORDS:
        text = re.sub(rf"(?<!\w){re.escape(old)}\b", new, text)
    return text


def _brackets(source: str) -> tuple[dict[int, int], set[int]]:
    """The lines that start outside any bracket and end inside one (line -> column of the
    bracket left open), and the lines that start inside a bracket."""
    opens: dict[int, int] = {}
    inside: set[int] = set()
    stack: list[tuple[int, int]] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.OP and tok.string in "([{":
            stack.append(tok.start)
        elif tok.type == tokenize.OP and tok.string in ")]}":
            stack.pop()
        elif tok.type == tokenize.NL and stack:
            row, column = stack[-1]
            if all(r == row for r, _ in stack) and row not in inside:
                opens[row] = column
            inside.add(tok.start[0] + 1)
    return opens, inside


def main(argv: list[str]) -> int:
    generated = unasync(SOURCE.read_text())
    if "--check" in argv:
        if TARGET.read_text() != generated:
            print(f"{TARGET} is out of date: run python scripts/unasync_client.py")
            return 1
        return 0
    TARGET.write_text(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
