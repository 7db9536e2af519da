"""The fenced blocks of README.md and docs/**/*.md, and the shell commands in them.

Shared by the docs tests: ``tests/unit/test_docs_commands.py`` parses every ``herald …`` line
with the real click CLI, ``tests/e2e/test_docs_run.py`` runs the cheap ones against a real
``herald up`` and ``tests/e2e/test_newcomer.py`` runs the README's snippets.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHELL = ("bash", "sh", "console", "shell")
# tokens that end one shell command and start the next (`·` separates commands in synopses)
SEPARATORS = {";", "&", "&&", "|", "||", "·"}
HERALD = {"herald", ".venv/bin/herald", "$H"}
# repo-relative paths a command names: they must exist in the repository
REPO_PATH = re.compile(
    r"(?<![\w/.:~$-])((?:examples|deploy|scripts|docs|src|bench|tests)/[\w./-]*[\w/])"
)


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One fenced code block: its file, the line of its opening fence, language and text."""

    path: Path
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Line:
    """One logical shell line of a block (continuations, open quotes and heredocs joined)."""

    block: Block
    line: int  # in the markdown file
    text: str

    @property
    def where(self) -> str:
        return f"{self.block.path.relative_to(ROOT)}:{self.line}"


_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def blocks(*langs: str) -> list[Block]:
    found = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            if m.group(1) in langs:
                line = text.count("\n", 0, m.start()) + 1
                found.append(Block(path, line, m.group(1), m.group(2)))
    return found


def _complete(text: str) -> bool:
    """Whether ``text`` is a whole shell line (no open quote, no trailing backslash)."""
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # "No closing quotation"
        return False
    return True


def logical_lines(block: Block) -> list[Line]:
    raw = block.text.splitlines()
    out: list[Line] = []
    i = 0
    while i < len(raw):
        start, text = i, raw[i]
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", text)
        if heredoc:  # the heredoc's body up to its terminator belongs to this line
            end = heredoc.group(1)
            while i + 1 < len(raw) and raw[i].strip() != end:
                i += 1
                text += "\n" + raw[i]
        else:
            while not _complete(text) and i + 1 < len(raw):
                i += 1
                text += "\n" + raw[i]
        i += 1
        if text.strip() and not text.lstrip().startswith("#"):
            out.append(Line(block, block.line + 1 + start, text))
    return out


def normalise(text: str) -> str:
    """Synopsis notation → a command: ``[--opt X]`` → ``--opt X``, ``A…`` → ``A``,
    ``<event id>`` → ``dummy-event-id``; continuations joined."""
    text = re.sub(r"\\\n", " ", text)
    text = re.sub(r"\[(-[^\[\]]*)\]", r"\1", text)
    text = re.sub(r"(\w)…(?=\s|$)", r"\1", text)
    return re.sub(r"<([a-z_][a-z_ ]*)>", lambda m: "dummy-" + m.group(1).replace(" ", "-"), text)


def commands(line: Line) -> list[list[str]]:
    """The simple commands of a logical line, each as its tokens (comments dropped)."""
    text = normalise(line.text.split("\n", 1)[0] if "<<" in line.text else line.text)
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    out: list[list[str]] = [[]]
    for token in lexer:
        if token in SEPARATORS:
            out.append([])
        else:
            out[-1].append(token)
    return [c for c in out if c]


def herald_args(tokens: list[str]) -> list[str] | None:
    """The arguments after ``herald`` when ``tokens`` run the herald CLI, else None.

    ``VAR=value`` prefixes are dropped; ``make up ARGS="…"`` runs ``herald up …``.
    """
    i = 0
    while i < len(tokens) and re.fullmatch(r"[A-Za-z_]\w*=.*", tokens[i], re.S):
        i += 1
    rest = tokens[i:]
    if rest and rest[0] in HERALD:
        return rest[1:]
    if rest[:2] == ["make", "up"]:
        extra = [t.split("=", 1)[1] for t in rest[2:] if t.startswith("ARGS=")]
        return ["up", *shlex.split(" ".join(extra))]
    return None


def repo_paths(text: str) -> list[str]:
    return [m.group(1) for m in REPO_PATH.finditer(text)]
