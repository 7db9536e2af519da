"""The egress policy: hostile URLs as data, DNS answers checked and pinned, redirects re-checked."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from herald.security.egress import (
    EgressDenied,
    EgressPolicy,
    address_class,
    check_message_urls,
    check_source,
    check_url,
    egress_client,
)
from herald.settings import Settings

STRICT = EgressPolicy()
REAL_GETADDRINFO = socket.getaddrinfo

HOSTILE: list[tuple[str, str | None]] = [
    ("http://127.0.0.1:8700/v1", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://localhost:8700/", "loopback"),
    ("http://api.localhost/", "loopback"),
    ("http://[::1]:8000/v1", "loopback"),
    ("http://10.0.0.5:8000/v1", "private"),
    ("http://172.16.3.4/", "private"),
    ("http://192.168.1.10/", "private"),
    ("http://100.64.0.1/", None),  # shared address space (CGNAT): private or reserved
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/", "cloud metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
    ("http://169.254.10.10/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://0.0.0.0:8700/", "unspecified"),
    ("http://[::]:8700/", "unspecified"),
    ("http://2130706433/", "loopback"),  # decimal 127.0.0.1
    ("http://0x7f000001/", "loopback"),  # hex 127.0.0.1
    ("http://017700000001/", "loopback"),  # octal 127.0.0.1
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
    ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
    ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
    ("http://224.0.0.1/", "multicast"),
]


@pytest.mark.parametrize(("url", "kind"), HOSTILE)
def test_private_and_metadata_urls_are_refused(url: str, kind: str | None) -> None:
    with pytest.raises(EgressDenied) as err:
        check_url(url, Settings())
    assert err.value.status == 403 and err.value.code == "egress_denied"
    assert err.value.details["address_class"] == (kind or err.value.details["address_class"])
    assert "security.egress.allowed_hosts" in err.value.message


@pytest.mark.parametrize(
    "url",
    [
        "simplecache::http://example.com/x.jsonl",
        "zip://a.txt::s3://bucket/x.zip",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "gopher://127.0.0.1:6379/_INFO",
        "dict://127.0.0.1:11211/",
        "unix:///var/run/docker.sock",
        "//127.0.0.1/x",
        "http:///nohost",
    ],
)
def test_other_schemes_and_chains_are_refused(url: str) -> None:
    with pytest.raises(EgressDenied):
        check_url(url, Settings())


@pytest.mark.parametrize(
    ("source", "protocol"),
    [
        ("docs/handbook", "file"),
        ("file:///srv/docs", "file"),
        ("s3://bucket/docs", "s3"),
        ("memory://x.jsonl", "memory"),
    ],
)
def test_data_sources_pass_paths_and_artifact_stores(source: str, protocol: str) -> None:
    assert check_source(source, Settings()) == protocol


@pytest.mark.parametrize(
    "source",
    [
        "simplecache::http://127.0.0.1/x.jsonl",
        "blockcache::s3://bucket/x.jsonl",
        "github://org:repo@main/x.jsonl",
        "sftp://host/x.jsonl",
        "http://127.0.0.1:9/x.jsonl",
    ],
)
def test_hostile_data_sources_are_refused(source: str) -> None:
    with pytest.raises(EgressDenied):
        check_source(source, Settings())


def test_public_addresses_pass_and_the_settings_open_private_ones() -> None:
    check_url("http://93.184.216.34/v1", Settings())
    check_url("https://[2606:4700::1111]/v1", Settings())
    assert address_class(__import__("ipaddress").ip_address("8.8.8.8")) is None
    opened = Settings(security={"egress": {"allow_private": True}})
    check_url("http://127.0.0.1:8700/v1", opened)
    check_url("http://10.1.2.3/", opened)
    with pytest.raises(EgressDenied, match="cloud metadata"):  # never by allow_private alone
        check_url("http://169.254.169.254/", opened)
    listed = Settings(
        security={"egress": {"allowed_hosts": ["10.0.0.0/24", "127.0.0.1:8000", "gpu-box"]}}
    )
    check_url("http://10.0.0.5:9999/v1", listed)
    check_url("http://127.0.0.1:8000/v1", listed)
    with pytest.raises(EgressDenied):
        check_url("http://127.0.0.1:8001/v1", listed)  # another port of an allowed host
    with pytest.raises(EgressDenied):
        check_url("http://10.0.1.5/v1", listed)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names of the ``.test`` domain resolve to what the test puts here (changeable)."""
    answers: dict[str, list[str]] = {}

    def getaddrinfo(host: str, port: Any, *a: Any, **kw: Any) -> list[Any]:
        if host in answers:
            fam = socket.AF_INET
            return [(fam, socket.SOCK_STREAM, 6, "", (ip, int(port or 0))) for ip in answers[host]]
        return REAL_GETADDRINFO(host, port, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_name_resolving_to_a_private_address_is_refused(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["intranet.test"] = ["10.0.0.7"]
    with pytest.raises(EgressDenied, match="resolves to a private address"):
        check_url("http://intranet.test/v1", Settings())
    fake_dns["mixed.test"] = ["93.184.216.34", "127.0.0.1"]  # every answer is checked
    with pytest.raises(EgressDenied, match="loopback"):
        check_url("http://mixed.test/v1", Settings())


class _Handler(BaseHTTPRequestHandler):
    redirect_to: str | None = None
    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers))
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"inside"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def make(redirect_to: str | None = None) -> tuple[int, list[dict[str, str]]]:
        seen: list[dict[str, str]] = []
        handler = type("H", (_Handler,), {"redirect_to": redirect_to, "seen": seen})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv.server_address[1], seen

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def test_the_client_refuses_loopback_unless_allowed(local_server: Any) -> None:
    port, seen = local_server()
    with egress_client(Settings()) as c, pytest.raises(EgressDenied):
        c.get(f"http://127.0.0.1:{port}/")
    assert seen == []  # no connection was made
    allowed = Settings(security={"egress": {"allowed_hosts": [f"127.0.0.1:{port}"]}})
    with egress_client(allowed) as c:
        assert c.get(f"http://127.0.0.1:{port}/").text == "inside"


def test_a_redirect_to_loopback_is_checked_again(local_server: Any) -> None:
    inner, inner_seen = local_server()
    outer, outer_seen = local_server(redirect_to=f"http://127.0.0.1:{inner}/secret")
    allowed = Settings(security={"egress": {"allowed_hosts": [f"127.0.0.1:{outer}"]}})
    with egress_client(allowed) as c, pytest.raises(EgressDenied, match="loopback"):
        c.get(f"http://127.0.0.1:{outer}/")
    assert len(outer_seen) == 1 and inner_seen == []


def test_dns_rebinding_cannot_swap_the_checked_address(
    fake_dns: dict[str, list[str]], local_server: Any
) -> None:
    port, seen = local_server()
    fake_dns["rebind.test"] = ["93.184.216.34"]  # public when the edge checks
    check_url(f"http://rebind.test:{port}/", Settings())
    fake_dns["rebind.test"] = ["127.0.0.1"]  # loopback when the fetch connects
    with egress_client(Settings()) as c, pytest.raises(EgressDenied, match="loopback"):
        c.get(f"http://rebind.test:{port}/")
    assert seen == []
    # an allowed name is reached at the address that was checked (the connection is pinned)
    allowed = Settings(security={"egress": {"allowed_hosts": ["rebind.test"]}})
    with egress_client(allowed) as c:
        assert c.get(f"http://rebind.test:{port}/").text == "inside"
    assert seen[0]["Host"] == f"rebind.test:{port}"


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("documents.ingest.requested", {"collection": "c", "source": "http://127.0.0.1/x"}),
        ("documents.ingest.requested", {"collection": "c", "source": "simplecache::s3://b/x"}),
        ("dataset.register", {"name": "d", "source": "http://169.254.169.254/x.jsonl"}),
        ("evaluation.requested", {"target": "http://[::1]:8700/v1#m", "suite": "tiny"}),
        (
            "collection.reindex.requested",
            {"collection": "c", "embedding_model": "openai:e@http://10.0.0.1/v1"},
        ),
        (
            "deployment.requested",
            {
                "name": "d",
                "targets": [
                    {
                        "model": "models:/m/1",
                        "backend": "openai",
                        "options": {"base_url": "http://0.0.0.0:1/v1"},
                    }
                ],
            },
        ),
    ],
)
def test_the_publish_edge_refuses_private_urls(type_: str, data: dict[str, Any]) -> None:
    with pytest.raises(EgressDenied):
        check_message_urls(type_, data, Settings())


def test_the_env_form_of_the_settings_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_SECURITY__EGRESS__ALLOW_PRIVATE", "true")
    monkeypatch.setenv("HERALD_SECURITY__EGRESS__ALLOWED_HOSTS", '["10.0.0.5:8000"]')
    s = Settings()
    assert s.security.egress.allow_private is True
    assert s.security.egress.allowed_hosts == ["10.0.0.5:8000"]


def test_async_transport_refuses_too(local_server: Any) -> None:
    import asyncio

    from herald.security.egress import async_egress_client

    port, seen = local_server()

    async def go() -> None:
        async with async_egress_client(Settings()) as c:
            await c.get(f"http://127.0.0.1:{port}/")

    with pytest.raises(EgressDenied):
        asyncio.run(go())
    assert seen == []
    assert httpx  # the module is what the transports build on
