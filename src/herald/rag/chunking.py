"""Structure-aware, token-aware chunking with overlap.

Markdown is split at headings first (each chunk records its heading path as ``section``), then
every section is cut at the coarsest boundary that fits the token budget: blank-line
paragraphs, then lines, then sentences, then words. Neighbouring chunks of one section share
about ``overlap`` tokens. Tokens are counted by the collection's embedding model, so a chunk
never exceeds what the model reads (``chunk_size`` is capped at its ``max_tokens``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from herald.rag.embeddings.base import approx_tokens

Counter = Callable[[str], int]
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SEPARATORS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?])\s+"))
_JOINERS = ("\n\n", "\n", " ")


@dataclass(frozen=True)
class TextChunk:
    text: str
    index: int
    section: str = ""
    metadata: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    path: tuple[str, ...]
    text: str


def markdown_sections(text: str) -> list[Section]:
    """Split markdown at ATX headings (ignoring fenced code); the heading stays in its section.

    A heading with no text of its own (``# Title`` directly followed by ``## Part``) is carried
    into the next section instead of becoming a chunk by itself."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    carry: list[str] = []
    current: tuple[str, ...] = ()
    in_fence = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        lines.clear()
        if not body:
            return
        if len(body.splitlines()) == 1 and _HEADING.match(body):
            carry.append(body)
            return
        sections.append(Section(current, "\n".join([*carry, body])))
        carry.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m:
            flush()
            level = len(m.group(1))
            path = [p for p in path if p[0] < level] + [(level, m.group(2).strip())]
            current = tuple(p[1] for p in path)
        lines.append(line)
    flush()
    if carry:
        sections.append(Section(current, "\n".join(carry)))
    return sections


class Chunker:
    """``Chunker(size=200, overlap=32, count=embedder.count_tokens).split(text, markdown=True)``."""

    def __init__(self, size: int = 200, overlap: int = 32, count: Counter = approx_tokens) -> None:
        if size < 8:
            raise ValueError("chunk size must be at least 8 tokens")
        if not 0 <= overlap < size // 2 + 1:
            raise ValueError("chunk overlap must be >= 0 and at most half the chunk size")
        self.size = size
        self.overlap = overlap
        self.count = count

    def split(self, text: str, *, markdown: bool = False) -> list[TextChunk]:
        sections = markdown_sections(text) if markdown else [Section((), text.strip())]
        out: list[TextChunk] = []
        for sec in sections:
            heading = " > ".join(sec.path)
            for piece in self._pack(self._pieces(sec.text, 0)):
                out.append(TextChunk(piece, len(out), heading))
        return out

    # recursive splitting --------------------------------------------------------------------
    # A piece is (text, joiner): the separator that stood before it in the source, used again
    # when pieces are packed into a chunk.
    def _pieces(self, text: str, level: int, joiner: str = "\n\n") -> list[tuple[str, str]]:
        """Pieces of ``text`` that each fit the budget, split at the coarsest boundary."""
        text = text.strip()
        if not text:
            return []
        if self.count(text) <= self.size - self.overlap:  # room for the previous tail
            return [(text, joiner)]
        if level < len(_SEPARATORS):
            parts = [p for p in _SEPARATORS[level].split(text) if p.strip()]
            if len(parts) > 1:
                inner = _JOINERS[level]
                out: list[tuple[str, str]] = []
                for i, p in enumerate(parts):
                    out += self._pieces(p, level + 1, joiner if i == 0 else inner)
                return out
            return self._pieces(text, level + 1, joiner)
        words = self._words(text)
        return [(w, joiner if i == 0 else " ") for i, w in enumerate(words)]

    def _words(self, text: str) -> list[str]:
        out: list[str] = []
        cur: list[str] = []
        used = 0
        for w in text.split():
            n = self.count(w)
            if cur and used + n > self.size - self.overlap:
                out.append(" ".join(cur))
                cur, used = [], 0
            cur.append(w)
            used += n
        if cur:
            out.append(" ".join(cur))
        return out

    def _pack(self, pieces: list[tuple[str, str]]) -> list[str]:
        """Greedily join pieces up to the budget; start each chunk with the previous tail.

        Token counts of pieces are added up (one count per piece, not per join)."""
        chunks: list[str] = []
        cur: list[str] = []
        used = 0
        for p, joiner in pieces:
            n = self.count(p)
            if cur and used + n > self.size:
                chunks.append("".join(cur))
                cur = self._tail(chunks[-1], n)
                used = sum(self.count(t) for t in cur)
            cur.append(joiner + p if cur else p)
            used += n
        if cur:
            chunks.append("".join(cur))
        return chunks

    def _tail(self, chunk: str, nxt: int) -> list[str]:
        """Trailing words of the finished chunk to repeat at the start of the next one."""
        if not self.overlap:
            return []
        words = chunk.split()
        tail: list[str] = []
        for w in reversed(words[-4 * self.overlap :]):
            candidate = [w, *tail]
            if self.count(" ".join(candidate)) > self.overlap:
                break
            tail = candidate
        if not tail or self.count(" ".join(tail)) + nxt > self.size:
            return []
        return [" ".join(tail)]
