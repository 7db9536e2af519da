"""Named secrets: sent only to their hosts; unknown and wrong-host answers are the same."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from herald.evaluation.targets import authorize_target, open_target, parse_target
from herald.security.secrets import (
    EnvReferenceRefused,
    SecretUnavailable,
    check_caller_options,
    host_allowed,
    secret_for,
)
from herald.settings import Settings


@pytest.mark.parametrize(
    ("url", "hosts", "ok"),
    [
        ("https://api.openai.com/v1", ["api.openai.com"], True),
        ("https://API.OpenAI.com./v1", ["api.openai.com"], True),
        ("https://api.openai.com/v1", ["api.openai.com:443"], True),
        ("http://gpu:8000/v1", ["gpu:8000"], True),
        ("http://[::1]:8000/v1", ["[::1]:8000"], True),
        ("https://api.openai.com:8443/v1", ["api.openai.com:443"], False),
        ("https://api.openai.com.attacker.example/v1", ["api.openai.com"], False),
        ("https://attacker.example/api.openai.com", ["api.openai.com"], False),
        ("https://api.openai.com@attacker.example/v1", ["api.openai.com"], False),
        ("http://gpu:8001/v1", ["gpu:8000"], False),
        ("not a url", ["api.openai.com"], False),
    ],
)
def test_hosts_match_exactly(url: str, hosts: list[str], ok: bool) -> None:
    assert host_allowed(url, hosts) is ok


def settings(**secrets: Any) -> Settings:
    return Settings(security={"secrets": secrets})


def test_unknown_and_wrong_host_give_the_same_error_without_the_value() -> None:
    s = settings(up={"value": "sk-the-value", "hosts": ["api.example.com"]})
    assert secret_for("up", "https://api.example.com/v1", s) == "sk-the-value"
    messages = []
    for name, url in [("up", "https://evil.example/v1"), ("nope", "https://evil.example/v1")]:
        with pytest.raises(SecretUnavailable) as err:
            secret_for(name, url, s)
        assert "sk-the-value" not in err.value.message
        assert err.value.status == 422
        messages.append(err.value.message.replace(repr(name), "NAME"))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("key", ["api_key_env", "secret_env", "api_key", "transport"])
def test_caller_options_cannot_name_env_vars_or_carry_keys(key: str) -> None:
    with pytest.raises(EnvReferenceRefused, match="api_key_secret"):
        check_caller_options({"base_url": "https://x/v1", key: "HERALD_API_KEY"})
    check_caller_options({"base_url": "https://x/v1", "api_key_secret": "up"})


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str | None]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        body = b'{"object": "list", "data": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[tuple[int, list[str | None]]]:
    seen: list[str | None] = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), type("R", (_Recorder,), {"seen": seen}))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], seen
    srv.shutdown()
    srv.server_close()


def test_the_secret_reaches_its_host_and_only_there(upstream: tuple[int, list[Any]]) -> None:
    port, seen = upstream
    s = Settings(
        security={
            "egress": {"allowed_hosts": [f"127.0.0.1:{port}"]},
            "secrets": {"up": {"value": "sk-upstream", "hosts": [f"127.0.0.1:{port}"]}},
        }
    )
    spec = authorize_target(parse_target(f"http://127.0.0.1:{port}/v1#m"), s, "up")

    async def check() -> None:
        async with open_target(spec, settings=s):
            pass

    asyncio.run(check())
    assert seen == ["Bearer sk-upstream"]
    opened = Settings(
        security={
            "egress": {"allow_private": True},
            "secrets": {"up": {"value": "sk-upstream", "hosts": [f"127.0.0.1:{port}"]}},
        }
    )
    other = parse_target(f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}/v1#m")
    with pytest.raises(SecretUnavailable):  # egress allows the address, the secret does not
        authorize_target(other, opened, "up")
