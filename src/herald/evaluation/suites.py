"""Evaluation suites (YAML) and their samples (JSONL in the OpenAI message schema).

A suite names a data set, the engines that score it, the metrics each engine reports and the
thresholds a result must meet::

    name: factual-qa
    dataset: factual_qa.jsonl          # relative to the suite file
    generation: {max_tokens: 24, temperature: 0}
    engines:
      - engine: reference
        metrics: [exact_match, normalized_match, contains, f1]
      - engine: performance
    thresholds:
      reference.contains: {min: 0.2}
    primary_metric: reference.contains

A sample is one JSON object per line: ``id``, ``messages`` (OpenAI chat messages; content may
be a list of ``{"type": "text"}`` / ``{"type": "image_url"}`` parts), and what the engines need
(``reference``, ``choices`` + ``answer``, ``prompt``, ``text``, ``contexts``, ``checks``).
A line that does not parse or fails the schema does not stop the evaluation: it becomes an
invalid item, recorded with its error and counted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from herald.evaluation.errors import SuiteError
from herald.security.files import FilePolicy, PathNotAllowed, is_suite_name

Role = Literal["system", "user", "assistant", "tool", "developer"]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "image_url", "input_audio"]
    text: str | None = None
    image_url: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _payload(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs 'text'")
        if self.type == "image_url" and not (self.image_url or {}).get("url"):
            raise ValueError("an image_url part needs image_url.url")
        return self


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Role
    content: str | list[ContentPart] | None = None


class Sample(BaseModel):
    """One evaluation item."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] | None = None
    prompt: str | None = Field(None, description="completion-style context (multiple choice)")
    text: str | None = Field(None, description="text scored for perplexity")
    reference: str | list[str] | None = None
    choices: list[str] | None = None
    answer: int | None = Field(None, ge=0)
    contexts: list[str] | None = Field(None, description="retrieved passages (rag engine)")
    checks: dict[str, Any] | None = Field(None, description="format checks for this item")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shape(self) -> Sample:
        if not (self.messages or self.prompt is not None or self.text is not None):
            raise ValueError("a sample needs 'messages', 'prompt' or 'text'")
        if self.choices is not None:
            if len(self.choices) < 2:
                raise ValueError("'choices' needs at least two options")
            if self.answer is None or self.answer >= len(self.choices):
                raise ValueError("'answer' must index one of 'choices'")
        return self

    def chat(self) -> list[dict[str, Any]]:
        """The chat messages as plain dicts (a prompt-only sample becomes one user message)."""
        if self.messages:
            return [m.model_dump(mode="json", exclude_none=True) for m in self.messages]
        return [{"role": "user", "content": self.prompt or self.text or ""}]

    def references(self) -> list[str]:
        if self.reference is None:
            if self.choices is not None and self.answer is not None:
                return [self.choices[self.answer]]
            return []
        return [self.reference] if isinstance(self.reference, str) else list(self.reference)

    def has_images(self) -> bool:
        return any(
            isinstance(m.content, list) and any(p.type == "image_url" for p in m.content)
            for m in self.messages or []
        )


@dataclass(frozen=True)
class InvalidSample:
    """A data set line that could not be used; it is recorded as a failed item."""

    id: str
    line: int
    error: str
    raw: str


class EngineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engine: str = Field(min_length=1)
    metrics: list[str] = Field(default_factory=list, description="default: the engine's own")
    options: dict[str, Any] = Field(default_factory=dict)


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None


class GenerationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_tokens: int = Field(64, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = 0
    system: str | None = Field(None, description="system message prepended to every chat")


class Suite(BaseModel):
    """A validated suite; ``dataset`` is an absolute path after loading."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    description: str = ""
    version: int = Field(1, ge=1)
    dataset: str = Field(min_length=1)
    limit: int | None = Field(None, ge=1, description="evaluate only the first N samples")
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    engines: list[EngineConfig] = Field(min_length=1)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    primary_metric: str | None = None
    higher_is_better: bool = True
    concurrency: int = Field(8, ge=1, le=256)
    path: str | None = Field(None, description="where the suite was loaded from")

    @field_validator("engines")
    @classmethod
    def _unique(cls, engines: list[EngineConfig]) -> list[EngineConfig]:
        names = [e.engine for e in engines]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"engine(s) listed twice: {', '.join(dupes)}")
        return engines

    def metric_names(self) -> list[str]:
        """Every ``engine.metric`` this suite reports."""
        from herald.evaluation.base import engine_class

        out = []
        for e in self.engines:
            cls = engine_class(e.engine)
            out += [f"{cls.name}.{m}" for m in (e.metrics or cls.default_metrics)]
        return out

    def fingerprint(self) -> str:
        """Hash of the suite config and its data set bytes (results are comparable when equal)."""
        h = hashlib.sha256(self.model_dump_json(exclude={"path", "concurrency"}).encode())
        path = Path(self.dataset)
        if path.is_file():
            h.update(path.read_bytes())
        return h.hexdigest()[:16]


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(x) for x in loc) or "(top level)"


def parse_suite(
    data: Any,
    *,
    base_dir: Path | None = None,
    origin: str = "suite",
    policy: FilePolicy | None = None,
) -> Suite:
    """Validate a suite mapping; every problem names its field. With ``policy`` (a suite a
    caller named by path) its data set must be allowed by the file access policy too."""
    if not isinstance(data, dict):
        raise SuiteError(f"{origin}: a suite must be a mapping, got {type(data).__name__}")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{_where(e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise SuiteError(f"{origin}: " + "; ".join(problems), details=problems) from None
    dataset = Path(suite.dataset).expanduser()
    if not dataset.is_absolute() and base_dir is not None:
        dataset = base_dir / dataset
    dataset = dataset.resolve()
    if policy is not None:  # before any look at the file: 403 says nothing of its existence
        dataset = policy.resolve(str(dataset), purpose="suite dataset")
    if not dataset.is_file():
        raise SuiteError(f"{origin}: dataset: file not found: {dataset}")
    if dataset.suffix not in (".jsonl", ".json"):
        raise SuiteError(f"{origin}: dataset: expected a .jsonl file, got {dataset.name}")
    suite = suite.model_copy(update={"dataset": str(dataset), "path": suite.path or origin})
    _check_engines(suite, origin)
    return suite


def _check_engines(suite: Suite, origin: str) -> None:
    from herald.evaluation.base import engine_class

    problems = []
    for i, e in enumerate(suite.engines):
        try:
            cls = engine_class(e.engine)
        except SuiteError as exc:
            problems.append(f"engines.{i}.engine: {exc.message}")
            continue
        unknown = [m for m in e.metrics if m not in cls.known_metrics]
        if unknown:
            problems.append(
                f"engines.{i}.metrics: unknown metric(s) {', '.join(unknown)} for engine "
                f"{e.engine!r} (known: {', '.join(cls.known_metrics)})"
            )
        try:
            cls.options_model.model_validate(e.options)
        except ValidationError as exc:
            problems += [
                f"engines.{i}.options.{_where(err['loc'])}: {err['msg']}"
                for err in exc.errors(include_url=False, include_input=False)
            ]
    if problems:
        raise SuiteError(f"{origin}: " + "; ".join(problems), details=problems)
    names = set(suite.metric_names())
    for key in [*suite.thresholds, *([suite.primary_metric] if suite.primary_metric else [])]:
        if key not in names:
            problems.append(
                f"{'primary_metric' if key == suite.primary_metric else 'thresholds'}: "
                f"{key!r} is not a metric of this suite (known: {', '.join(sorted(names))})"
            )
    if problems:
        raise SuiteError(f"{origin}: " + "; ".join(problems), details=problems)


def load_suite(
    ref: str, search_paths: list[Path] | None = None, *, policy: FilePolicy | None = None
) -> Suite:
    """A suite from a YAML file path, or by name from ``search_paths`` (``<name>.yaml``).

    With ``policy`` (``ref`` came from an API or message caller) a name is looked up in
    ``search_paths`` first (the operator's folders: trusted), and a path — or a name not found
    there — must be allowed by the file access policy (``security.files.allowed_roots``),
    the suite's data set too.
    """
    if policy is not None:
        path, trusted = _caller_suite_file(ref, search_paths or [], policy)
    else:
        path, trusted = Path(ref).expanduser(), True
        if not path.is_file():
            path = _by_name(ref, search_paths or [])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from None
    return parse_suite(
        data,
        base_dir=path.parent.resolve(),
        origin=str(path.resolve()),
        policy=None if trusted else policy,
    )


def _by_name(ref: str, search_paths: list[Path]) -> Path:
    found = [c for c in (Path(p) / f"{ref}.yaml" for p in search_paths) if c.is_file()]
    if not found:
        where = ", ".join(str(p) for p in search_paths) or "no search path"
        raise SuiteError(f"suite {ref!r} not found (a YAML path, or a name in: {where})")
    return found[0]


def _caller_suite_file(ref: str, search_paths: list[Path], policy: FilePolicy) -> tuple[Path, bool]:
    """(the suite file, whether it lies in a configured suite folder) for a caller's ``ref``."""
    folders = [Path(p).resolve() for p in search_paths]
    if is_suite_name(ref):
        for folder in folders:
            if (folder / f"{ref}.yaml").is_file():
                return folder / f"{ref}.yaml", True
    try:
        path = policy.resolve(ref, purpose="suite")
    except PathNotAllowed:
        # the API resolves a name to its file and hands the job that absolute path
        if policy.configured_suite(ref) and Path(ref).resolve().is_file():
            return Path(ref).resolve(), True
        if is_suite_name(ref):
            raise SuiteError(
                f"suite {ref!r} not found (a name of a suite in the server's suite folders, or "
                "a YAML path the server may read)"
            ) from None
        raise
    if not path.is_file():
        raise SuiteError(f"suite {ref!r} not found (a YAML path, or a name of a configured suite)")
    return path, any(path.is_relative_to(f) for f in folders)


def load_samples(suite: Suite) -> tuple[list[Sample], list[InvalidSample]]:
    """The suite's samples (up to ``limit``) and the lines that could not be used."""
    good: list[Sample] = []
    bad: list[InvalidSample] = []
    seen: set[str] = set()
    with open(suite.dataset, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            if suite.limit is not None and len(good) + len(bad) >= suite.limit:
                break
            fallback = f"line-{lineno}"
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                bad.append(InvalidSample(fallback, lineno, f"not valid JSON: {exc.msg}", raw[:500]))
                continue
            sid = str(data.get("id", fallback)) if isinstance(data, dict) else fallback
            if sid in seen:
                bad.append(InvalidSample(f"{sid}#{lineno}", lineno, "duplicate id", raw[:500]))
                continue
            seen.add(sid)
            try:
                good.append(Sample.model_validate(data))
            except ValidationError as exc:
                msg = "; ".join(
                    f"{_where(e['loc'])}: {e['msg']}"
                    for e in exc.errors(include_url=False, include_input=False)
                )
                bad.append(InvalidSample(sid, lineno, f"invalid sample: {msg}", raw[:500]))
    return good, bad
