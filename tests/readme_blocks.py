"""Read the fenced code blocks of a Markdown page: the shell commands of its ```bash blocks and its ```python
snippets, in document order (for tests/test_readme.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """One fenced block: its language tag, its first line's number in the page, and its text."""

    lang: str
    line: int
    text: str

    @property
    def key(self) -> str:
        """How tests name a Python snippet: its first line (a comment saying what it does)."""
        return self.text.splitlines()[0].strip() if self.text.strip() else ""


@dataclass(frozen=True)
class Command:
    """One shell command of a ```bash block: continuation lines joined, comments dropped."""

    text: str
    line: int


def blocks(path: Path) -> list[Block]:
    """Every fenced block of the page, in order."""
    page = path.read_text(encoding="utf-8")
    return [Block(match["lang"], page.count("\n", 0, match.start()) + 2, match["body"]) for match in FENCE.finditer(page)]


def strip_comment(line: str) -> str:
    """`line` without a trailing shell comment: a `#` at the start or after whitespace, outside quotes."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def commands(block: Block) -> list[Command]:
    """The commands of a ```bash block: a line ending in `\\` continues on the next; blank lines and comments go."""
    out, pending, start = [], "", None
    for offset, raw in enumerate(block.text.splitlines()):
        line = strip_comment(raw)
        if not line.strip() and not pending:
            continue
        start = block.line + offset if start is None else start
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        out.append(Command(" ".join((pending + line.strip()).split()), start))
        pending, start = "", None
    return out
