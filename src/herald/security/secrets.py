"""Named secrets: upstream credentials an operator defines and callers reference by name.

An operator defines each secret once (``security.secrets`` in herald.yaml, or
``HERALD_SECURITY__SECRETS__<NAME>__VALUE`` and ``…__HOSTS='["api.openai.com"]'``); requests and
messages name it (``api_key_secret: openai``), and :func:`secret_for` hands its value out only for
a URL whose host (and port, when the entry has one) is one of the secret's ``hosts``.

No request, message or deployment field can name a server environment variable: a caller's
``api_key_env`` (or a literal ``api_key`` in deployment options, which would be stored in the
event log and shown by the deployment API) is refused with 422 :class:`EnvReferenceRefused`.
Operator configuration (``serving.models.*.options.api_key_env``,
``alerting.webhooks[].secret_env``) keeps working: the operator wrote it.

Errors never say whether a secret (or a variable) exists: an unknown name and a wrong host give
the same message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from herald.errors import HeraldError

log = logging.getLogger("herald.security.secrets")

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
#: option keys a caller may not send: they name server state or carry a credential in clear
CALLER_REFUSED_KEYS = ("api_key_env", "secret_env", "api_key", "transport")
HINT = (
    "name an operator-defined secret instead: api_key_secret: <name> (an operator defines it "
    "with HERALD_SECURITY__SECRETS__<NAME>__VALUE and __HOSTS, see docs/security.md)"
)


class SecretUnavailable(HeraldError):
    """A named secret cannot be used for this URL (unknown, or not configured for its host)."""

    code = "secret_unavailable"
    status = 422


class EnvReferenceRefused(HeraldError):
    """A caller named a server environment variable (or sent a credential in clear)."""

    code = "env_reference_refused"
    status = 422


def _hosts(settings: Any) -> Mapping[str, Any]:
    section = getattr(settings, "security", settings)
    secrets = getattr(section, "secrets", None)
    return secrets if isinstance(secrets, Mapping) else {}


def _host_port(url: str) -> tuple[str, int | None]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return "", None
    return (parts.hostname or "").lower().rstrip("."), port


def _entry(entry: str) -> tuple[str, int | None]:
    e = entry.strip().lower()
    if "://" in e:
        try:
            parts = urlsplit(e)
            return (parts.hostname or "").rstrip("."), parts.port
        except ValueError:
            return "", None
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", e) or re.fullmatch(r"([^:]+):(\d+)", e)
    if m:
        return m.group(1).rstrip("."), int(m.group(2)) if m.group(2) else None
    return e.rstrip("."), None


def host_allowed(url: str, hosts: list[str]) -> bool:
    """True when ``url``'s host (and port, where an entry names one) is one of ``hosts``."""
    host, port = _host_port(url)
    if not host:
        return False
    for entry in hosts:
        h, p = _entry(entry)
        if h == host and (p is None or p == port):
            return True
    return False


def secret_for(name: str, url: str, settings: Any) -> str:
    """The value of secret ``name`` for a request to ``url``; raises
    :class:`SecretUnavailable` (never echoing a value) unless the URL's host is one of the
    secret's hosts. An unknown name gives the same error as a wrong host."""
    known = {k.lower(): v for k, v in _hosts(settings).items()}  # env names arrive lower-case
    spec = known.get(name.lower()) if _NAME.match(name or "") else None
    if spec is None or not host_allowed(url, list(spec.hosts)):
        host, _ = _host_port(url)
        log.warning("secret %r refused for host %r", name, host)
        raise SecretUnavailable(
            f"secret {name!r} is not available for host {host or url!r}: an operator defines "
            "named secrets and the hosts each may be sent to (security.secrets); ask them to "
            "add this host, or use a secret defined for it"
        )
    return str(spec.value)


def listing(settings: Any) -> list[dict[str, Any]]:
    """Names and hosts of the configured secrets (never their values)."""
    return [
        {"name": name, "hosts": list(spec.hosts)} for name, spec in sorted(_hosts(settings).items())
    ]


def refuse_env_field(name: str, value: Any) -> None:
    """Raise :class:`EnvReferenceRefused` when a caller sent ``name`` (e.g. ``api_key_env``)."""
    if value is None:
        return
    raise EnvReferenceRefused(
        f"{name} is not accepted: requests and messages cannot name server environment "
        f"variables; {HINT}",
        details=[{"loc": [name], "msg": "not accepted from callers", "type": "value_error"}],
    )


def refused_option(options: Mapping[str, Any] | None) -> str | None:
    """The first option key in ``options`` a caller may not send (see
    :data:`CALLER_REFUSED_KEYS`), or ``None``."""
    for key in CALLER_REFUSED_KEYS:
        if options and key in options:
            return key
    return None


def refusal_message(key: str, where: str = "options") -> str:
    """What to tell a caller who sent a refused option."""
    if key == "api_key":
        what = "a credential in clear would be stored in the event log"
    elif key == "transport":
        what = "it is an internal option"
    else:
        what = "requests and messages cannot name server environment variables"
    return f"{where}.{key} is not accepted: {what}; {HINT}"


def check_caller_options(options: Mapping[str, Any] | None, where: str = "options") -> None:
    """Raise :class:`EnvReferenceRefused` when caller-sent backend ``options`` name an env var,
    carry a literal key or an internal option."""
    key = refused_option(options)
    if key is not None:
        raise EnvReferenceRefused(
            refusal_message(key, where),
            details=[{"loc": [*where.split("."), key], "msg": "not accepted from callers"}],
        )


__all__ = [
    "CALLER_REFUSED_KEYS",
    "NAME_PATTERN",
    "EnvReferenceRefused",
    "SecretUnavailable",
    "check_caller_options",
    "host_allowed",
    "listing",
    "refusal_message",
    "refuse_env_field",
    "refused_option",
    "secret_for",
]
