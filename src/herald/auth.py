"""The admin API key: from ``HERALD_API_KEY`` or generated once into ``$HERALD_HOME/admin.key``."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
from pathlib import Path

from herald.errors import ConfigurationError

KEY_FILE = "admin.key"


def key_path(home: Path) -> Path:
    return home / KEY_FILE


def ensure_api_key(home: Path, configured: str | None) -> tuple[str, bool]:
    """Return (key, created): the configured key, the stored one, or a new one (mode 0600)."""
    if configured:
        return configured, False
    path = key_path(home)
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return key, False
    home.mkdir(parents=True, exist_ok=True)
    key = "hk_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    os.chmod(path, 0o600)
    return key, True


def read_api_key(home: Path, configured: str | None) -> str | None:
    """The key a client should send (no file is created)."""
    if configured:
        return configured
    path = key_path(home)
    return path.read_text().strip() if path.is_file() else None


def check_key(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except OSError:
            return False


def check_bind(host: str, api_key_configured: bool) -> None:
    """Refuse a non-loopback bind unless an API key was configured explicitly."""
    if not is_loopback(host) and not api_key_configured:
        raise ConfigurationError(
            f"refusing to listen on {host}: binding a non-loopback address needs an explicit "
            "HERALD_API_KEY (generate one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')"
        )


def check_key_strength(configured: str | None, min_length: int) -> None:
    """Refuse a chosen admin key shorter than ``min_length`` characters (a generated one is
    always long enough): a short key is guessed long before any throttling matters."""
    if configured is not None and len(configured.strip()) < min_length:
        raise ConfigurationError(
            f"HERALD_API_KEY is too short ({len(configured.strip())} characters; at least "
            f"{min_length} are needed, see security.auth.min_api_key_length): choose a longer "
            "random key, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))', "
            "or unset HERALD_API_KEY to have one generated into $HERALD_HOME/admin.key"
        )
