"""Privilege: what only the operator may switch on, and what non-admin callers may see.

* **Operator-only switches.** Running code shipped with a model (``trust_remote_code``) and
  loading pickle-based weights (``.bin``/``.pt``: unpickling runs code) are decided by the
  operator's settings alone — ``security.trust_remote_code``, ``security.allow_unsafe_weights``
  and, for RAG embedders, ``rag.trust_remote_code``. A message, job parameter or API body that
  names one of :data:`OPERATOR_ONLY` (at any depth, e.g. a deployment's ``options.engine``) is
  refused with :class:`OperatorSettingRequired` (422) naming the setting; nothing is stored.
* **No server paths for non-admin callers.** :func:`redact_paths` rewrites absolute paths in
  text shown to a caller without the admin scope: those under ``HERALD_HOME`` become
  ``$HERALD_HOME/…``, any other becomes ``<path>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from herald.errors import HeraldError

_TRUST = "security.trust_remote_code (HERALD_SECURITY__TRUST_REMOTE_CODE)"
_UNSAFE = "security.allow_unsafe_weights (HERALD_SECURITY__ALLOW_UNSAFE_WEIGHTS)"
OPERATOR_ONLY: Mapping[str, str] = {
    "trust_remote_code": _TRUST,  # transformers, sentence-transformers, vLLM engine args
    "allow_unsafe_weights": _UNSAFE,
    "use_safetensors": _UNSAFE,  # from_pretrained(use_safetensors=False) unpickles .bin
    "load_format": _UNSAFE,  # vLLM load_format="pt" unpickles
}
MAX_NODES = 100_000  # a bound on the walk (the JSON edge caps depth and size before this)


class OperatorSettingRequired(HeraldError):
    """A caller named a switch only the operator's settings may turn on."""

    code = "operator_setting_required"
    status = 422


def refuse_operator_fields(data: Any, what: str) -> None:
    """Raise :class:`OperatorSettingRequired` when ``data`` (a JSON-like value) names an
    operator-only switch anywhere; ``what`` says where it came from (``'finetune.requested'``)."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    seen = 0
    while stack and seen < MAX_NODES:
        value, loc = stack.pop()
        seen += 1
        if isinstance(value, Mapping):
            for key, item in value.items():
                setting = OPERATOR_ONLY.get(key) if isinstance(key, str) else None
                if setting is not None:
                    where = ".".join((*loc, key))
                    raise OperatorSettingRequired(
                        f"{what}: {where!r} cannot be set by a request; it is decided by the "
                        f"operator's setting {setting}. Remove the field.",
                        details=[{"loc": [*loc, key], "setting": setting.split(" ")[0]}],
                    )
                stack.append((item, (*loc, str(key))))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, (*loc, str(i))) for i, item in enumerate(value))


# absolute POSIX paths (/a/b) and Windows drive paths (C:\a), not URL paths (scheme://host/a)
_ABS_PATH = re.compile(r"(?<![\w:/.~-])(?:/(?:[\w.@+~-]+/?)+|[A-Za-z]:\\[^\s'\"]*)")


def redact_paths(text: str, home: Path | str | None = None) -> str:
    """``text`` with absolute server paths hidden: ``$HERALD_HOME/…`` for those under
    ``home``, ``<path>`` for any other. URLs (``file:///…`` included) are rewritten alike."""
    if not text:
        return text
    text = re.sub(r"\bfile://(?=/)", "", text)
    if home is not None:
        prefixes = {str(Path(home)), str(Path(home).expanduser().resolve())}
        for prefix in sorted(prefixes, key=len, reverse=True):
            if prefix not in ("/", ""):
                text = re.sub(re.escape(prefix) + r"(?=/|\b|$)", "$HERALD_HOME", text)
    return _ABS_PATH.sub(_hide, text)


_ROUTES = ("/v1/", "/ui/", "/healthz", "/readyz", "/metrics", "/login", "/logout")


def _hide(m: re.Match[str]) -> str:
    path = m.group(0)
    if path.startswith(_ROUTES) or (path.startswith("/") and path.strip("/").count("/") < 1):
        return path  # Herald's own routes ("see GET /v1/catalog") and bare "/x" stay
    return "<path>"


def redact_json(value: Any, home: Path | str | None = None) -> Any:
    """Every string in a JSON-like value passed through :func:`redact_paths`."""
    if isinstance(value, str):
        return redact_paths(value, home)
    if isinstance(value, list):
        return [redact_json(v, home) for v in value]
    if isinstance(value, dict):
        return {k: redact_json(v, home) for k, v in value.items()}
    return value
