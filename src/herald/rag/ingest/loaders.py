"""Document loaders by file type: text, markdown, HTML, PDF (pypdf) and JSONL records.

A loader turns the bytes of one file into :class:`Document` objects (one per file, or one per
record for JSONL). Each document has a ``ref_doc_id`` (re-ingesting it replaces its chunks),
``parts`` (PDF: one per page, carrying ``page``) and metadata: ``title``, ``source``,
``filename``, ``doc_type`` and any custom fields. Corrupt or empty input raises
:class:`DocumentError`, which ingestion reports for that file while the batch continues.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any

from herald.rag.errors import DocumentError

Metadata = dict[str, Any]


@dataclass
class Document:
    ref_doc_id: str
    parts: list[tuple[str, Metadata]]  # (text, extra metadata such as {"page": 3})
    metadata: Metadata
    content_hash: str
    markdown: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(t for t, _ in self.parts)


Loader = Callable[[bytes, str], list[Document]]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decode(data: bytes, source: str) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{source}: looks binary (NUL bytes), not text")
    for enc in (
        ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",)
    ):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{source}: not valid UTF-8 text ({exc})") from None


def _base(source: str, doc_type: str, title: str) -> Metadata:
    name = PurePosixPath(source.split("://", 1)[-1]).name
    return {
        "source": source,
        "filename": name,
        "title": title.strip()[:300] or PurePosixPath(name).stem,
        "doc_type": doc_type,
    }


def _one(
    source: str, data: bytes, text: str, doc_type: str, title: str, md: bool
) -> list[Document]:
    if not text.strip():
        raise DocumentError(f"{source}: document is empty")
    return [Document(source, [(text, {})], _base(source, doc_type, title), _sha(data), md)]


def load_text(data: bytes, source: str) -> list[Document]:
    text = _decode(data, source)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    return _one(source, data, text, "text", first[:120], False)


_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def load_markdown(data: bytes, source: str) -> list[Document]:
    text = _decode(data, source)
    title = ""
    m = _FRONT.match(text)
    extra: Metadata = {}
    if m:  # YAML front matter: title and scalar fields become metadata
        import yaml

        try:
            front = yaml.safe_load(m.group(1)) or {}
        except yaml.YAMLError as exc:
            raise DocumentError(f"{source}: bad YAML front matter ({exc})") from None
        if isinstance(front, dict):
            extra = {str(k): v for k, v in front.items() if isinstance(v, str | int | float | bool)}
            title = str(extra.pop("title", "") or "")
        text = text[m.end() :]
    if not title:
        h = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)
        title = h.group(1) if h else ""
    docs = _one(source, data, text, "markdown", title, True)
    docs[0].metadata = {**extra, **docs[0].metadata}
    return docs


class _HTMLText(HTMLParser):
    SKIP = frozenset({"script", "style", "noscript", "template", "head"})
    BLOCK = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "section",
            "article",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "pre",
            "blockquote",
            "table",
            "ul",
            "ol",
            "header",
            "footer",
            "main",
            "dd",
            "dt",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title: list[str] = []
        self.h1: list[str] = []
        self._skip = 0
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP and tag != "head":
            self._skip += 1
        self._in.append(tag)
        if tag in self.BLOCK:
            self.out.append("\n\n" if tag not in ("br", "li", "tr") else "\n")
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.out.append("#" * int(tag[1]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and tag != "head" and self._skip:
            self._skip -= 1
        if tag in self._in:
            while self._in and self._in.pop() != tag:
                pass
        if tag in self.BLOCK:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if "title" in self._in:
            self.title.append(data)
            return
        if self._skip:
            return
        if "h1" in self._in:
            self.h1.append(data)
        self.out.append(data)


def load_html(data: bytes, source: str) -> list[Document]:
    parser = _HTMLText()
    try:
        parser.feed(_decode(data, source))
        parser.close()
    except Exception as exc:  # html.parser is lenient; this is defensive
        raise DocumentError(f"{source}: cannot parse HTML ({exc})") from None
    text = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.out))
    text = re.sub(r"\n\s*\n(\s*\n)+", "\n\n", text)
    text = "\n".join(ln.strip() for ln in text.splitlines()).strip()
    title = html.unescape(" ".join("".join(parser.title).split())) or " ".join(
        "".join(parser.h1).split()
    )
    return _one(source, data, text, "html", title, True)


def load_pdf(data: bytes, source: str) -> list[Document]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError as exc:
        raise DocumentError(
            f"{source}: reading PDF needs pypdf: pip install 'herald[rag]'"
        ) from exc
    import logging
    import warnings

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise DocumentError(f"{source}: PDF is encrypted")
            pages = [(p.extract_text() or "", {"page": i + 1}) for i, p in enumerate(reader.pages)]
            info = reader.metadata
            title = str(info.title) if info is not None and info.title else ""
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"{source}: corrupt or unreadable PDF ({exc})") from None
    parts = [(t, m) for t, m in pages if t.strip()]
    if not parts:
        raise DocumentError(f"{source}: PDF has no extractable text (scanned images need OCR)")
    if not title:
        title = next(ln for ln in parts[0][0].splitlines() if ln.strip())
    meta = _base(source, "pdf", title)
    meta["pages"] = len(pages)
    return [Document(source, parts, meta, _sha(data))]


TEXT_FIELDS = ("text", "content", "body", "page_content")


def load_jsonl(data: bytes, source: str) -> list[Document]:
    """One document per record: text from ``text``/``content``/``body``, id from ``id``."""
    docs: list[Document] = []
    errors: list[str] = []
    seen: set[str] = set()
    for n, line in enumerate(_decode(data, source).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {n}: invalid JSON ({exc.msg})")
            continue
        if not isinstance(rec, dict):
            errors.append(f"line {n}: a record must be a JSON object")
            continue
        key = next((f for f in TEXT_FIELDS if isinstance(rec.get(f), str)), None)
        if key is None or not rec[key].strip():
            errors.append(f"line {n}: no text (one of {', '.join(TEXT_FIELDS)})")
            continue
        rid = str(rec.get("id", n))
        if rid in seen:
            errors.append(f"line {n}: duplicate id {rid!r}")
            continue
        seen.add(rid)
        meta = _base(source, "jsonl", str(rec.get("title") or f"{source} #{rid}"))
        meta.update(
            {
                str(k): v
                for k, v in rec.items()
                if k not in (key, "id", "title") and isinstance(v, str | int | float | bool)
            }
        )
        meta["record_id"] = rid
        raw = json.dumps(rec, sort_keys=True).encode()
        docs.append(Document(f"{source}#{rid}", [(rec[key], {})], meta, _sha(raw)))
    if not docs:
        raise DocumentError(
            f"{source}: no usable records" + (f" ({'; '.join(errors[:3])})" if errors else "")
        )
    if errors:
        docs[0].errors.extend(errors)
    return docs


LOADERS: dict[str, Loader] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".jsonl": load_jsonl,
}


def loader_for(name: str) -> Loader | None:
    return LOADERS.get(PurePosixPath(name).suffix.lower())
