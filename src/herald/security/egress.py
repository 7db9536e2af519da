"""One egress policy for every server-side fetch of a URL that a caller names.

RAG and data set URLs, evaluation endpoint targets, ``openai`` backends of deployments,
OpenAI-compatible embedders and webhooks all go through it (``security.egress`` settings):

- schemes ``http``/``https`` only (call sites that read artifacts also accept ``s3``/``gs``,
  whose endpoint is the operator's); fsspec protocol chains (``simplecache::http://…``) and
  other protocols are refused;
- loopback, link-local, private (RFC 1918, unique-local v6, CGNAT), unspecified, reserved and
  multicast addresses are refused, and so are IPv4 addresses hidden in IPv6 (``::ffff:127.0.0.1``,
  6to4, NAT64), unless ``allow_private`` is set or the host/CIDR is in ``allowed_hosts``;
- cloud metadata endpoints (``169.254.169.254``, ``fd00:ec2::254``, ``metadata.google.internal``)
  are refused even with ``allow_private``; only an explicit ``allowed_hosts`` entry opens them;
- every address a host name resolves to is checked, and :class:`EgressTransport` connects to the
  address it checked (no second lookup: DNS rebinding cannot swap it). Redirects are requests
  through the same transport, so every hop is checked again.

:func:`check_url` is the early check of an API edge (403 ``egress_denied`` at once);
:func:`egress_client` / :func:`async_egress_client` enforce the policy on the fetch itself.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from herald.errors import HeraldError

log = logging.getLogger("herald.security.egress")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

HTTP = ("http", "https")
ARTIFACT_PROTOCOLS = ("s3", "s3a", "gs", "gcs")
#: in-process stores: nothing leaves the server (files of the server are security.files' part)
LOCAL_PROTOCOLS = ("file", "local", "memory")
SETTING_HINT = (
    "to allow it, an operator adds the host (or host:port, or a CIDR range) to "
    "security.egress.allowed_hosts (HERALD_SECURITY__EGRESS__ALLOWED_HOSTS)"
)

METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_LEGACY_V4 = re.compile(r"(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}", re.IGNORECASE)


class EgressDenied(HeraldError):
    """A server-side fetch of a caller-named URL was refused by the egress policy."""

    code = "egress_denied"
    status = 403


def address_class(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``None`` when it is one)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            found = address_class(inner)
            if found is not None:
                return found
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "private"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def host_class(host: str) -> str | None:
    """Why a host *name* is not public without resolving it (loopback/metadata names)."""
    h = host.lower().rstrip(".")
    if h in METADATA_HOSTS:
        return "cloud metadata"
    if h == "localhost" or h.endswith(".localhost"):
        return "loopback"
    return None


@dataclass(frozen=True)
class _Rule:
    host: str | None
    network: IPNetwork | None
    port: int | None

    def matches(self, host: str, port: int | None, ip: IPAddress | None) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None and self.host == host:
            return True
        return self.network is not None and ip is not None and ip in self.network


def _parse_rule(entry: str) -> _Rule:
    e = entry.strip().lower()
    try:
        return _Rule(None, ipaddress.ip_network(e, strict=False), None)
    except ValueError:
        pass
    host, port = e, None
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", e) or re.fullmatch(r"([^:]+):(\d+)", e)
    if m:
        host, port = m.group(1), int(m.group(2)) if m.group(2) else None
    try:
        return _Rule(None, ipaddress.ip_network(host, strict=False), port)
    except ValueError:
        return _Rule(host.rstrip("."), None, port)


def _default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme)


def _ip(host: str) -> IPAddress | None:
    """``host`` as an address: standard forms, and the legacy IPv4 forms resolvers accept
    (``2130706433``, ``0x7f000001``, ``0177.1``, ``127.1``), parsed locally (no DNS)."""
    h = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(h):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(h))
        except OSError:
            return None
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """The policy of ``security.egress``: what a caller-named URL may reach."""

    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Any = None) -> EgressPolicy:
        """The policy of Herald ``settings`` (or its ``security``/``security.egress`` section);
        ``None`` gives the strict default."""
        if isinstance(settings, EgressPolicy):
            return settings
        section = settings
        for attr in ("security", "egress"):
            section = getattr(section, attr, section)
        if section is None or not hasattr(section, "allow_private"):
            return cls()
        return cls(bool(section.allow_private), tuple(section.allowed_hosts))

    @property
    def rules(self) -> tuple[_Rule, ...]:
        return tuple(_parse_rule(e) for e in self.allowed_hosts if e.strip())

    def allowed(self, host: str, port: int | None, ip: IPAddress | None = None) -> bool:
        """True when an ``allowed_hosts`` entry names this host (or its address)."""
        h = host.lower().strip("[]").rstrip(".")
        return any(r.matches(h, port, ip or _ip(h)) for r in self.rules)

    def _deny(self, what: str, cls_: str, why: str = "") -> EgressDenied:
        log.warning("egress denied: %s (%s address)%s", what, cls_, why)
        return EgressDenied(
            f"the egress policy refuses {what}: it is a {cls_} address{why}, which the server "
            f"does not fetch for callers; use a public URL, or {SETTING_HINT}",
            details={"policy": "security.egress", "address_class": cls_},
        )

    def check_address(self, host: str, port: int | None, ip: IPAddress) -> None:
        """Raise :class:`EgressDenied` unless ``host`` may be reached at ``ip``."""
        cls_ = address_class(ip)
        if cls_ is None or self.allowed(host, port, ip):
            return
        if self.allow_private and cls_ != "cloud metadata":
            return
        shown = host if _ip(host) is not None else f"{host} (resolves to a {cls_} address)"
        raise self._deny(shown, cls_)

    def check_host(self, scheme: str, host: str, port: int | None) -> None:
        """Checks that need no DNS lookup: the scheme, the host's form and well-known names."""
        if scheme not in HTTP:
            raise EgressDenied(
                f"the egress policy refuses the URL scheme {scheme or '(none)'!r}: "
                "only http:// and https:// URLs are fetched for callers",
                details={"policy": "security.egress"},
            )
        if not host:
            raise EgressDenied(
                "the URL has no host; give http(s)://host[:port]/…",
                details={"policy": "security.egress"},
            )
        ip = _ip(host)
        if ip is not None:
            self.check_address(host, port, ip)
            return
        cls_ = host_class(host)
        opened = self.allow_private and cls_ != "cloud metadata"
        if cls_ is not None and not opened and not self.allowed(host, port):
            raise self._deny(host, cls_)

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Addresses of ``host``, each checked (raises when any of them is refused)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from None
        return self._checked(host, port, infos)

    async def aresolve(self, host: str, port: int) -> list[IPAddress]:
        """:meth:`resolve` without blocking the event loop."""
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from None
        return self._checked(host, port, infos)

    def _checked(self, host: str, port: int, infos: Iterable[Any]) -> list[IPAddress]:
        out: list[IPAddress] = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            self.check_address(host, port, ip)  # every address, not only the first
            if ip not in out:
                out.append(ip)
        return out

    def check_url(self, url: str, *, schemes: tuple[str, ...] = HTTP, resolve: bool = True) -> None:
        """Raise :class:`EgressDenied` unless the policy lets the server fetch ``url``.

        A host that does not resolve passes here (the fetch fails, and the transport checks
        again at connect time); a host that resolves to a refused address does not."""
        check_chain(url)
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise EgressDenied(
                f"{url!r} is not a valid URL", details={"policy": "security.egress"}
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in schemes:
            raise EgressDenied(
                f"the egress policy refuses the URL scheme {scheme or '(none)'!r} here: "
                f"use {', '.join(s + '://' for s in schemes)}",
                details={"policy": "security.egress"},
            )
        if scheme not in HTTP:
            return  # artifact stores: the endpoint is the operator's, not the caller's
        host = parts.hostname or ""
        port = port or _default_port(scheme)
        self.check_host(scheme, host, port)
        if resolve and _ip(host) is None:
            with contextlib.suppress(OSError):  # unresolvable: the fetch fails on its own
                self.resolve(host, port or 80)


def check_chain(source: str) -> None:
    """Refuse fsspec protocol chaining (``simplecache::http://…``, ``zip://x::s3://…``)."""
    if "::" in _BRACKETS.sub("", source):
        raise EgressDenied(
            "fsspec protocol chains ('::') are not accepted from callers: give one plain URL "
            "(http(s)://, s3://, gs://) or a path",
            details={"policy": "security.egress"},
        )


def check_url(url: str, settings: Any = None, *, schemes: tuple[str, ...] = HTTP) -> None:
    """Raise :class:`EgressDenied` (403) unless ``settings``' egress policy allows ``url``."""
    EgressPolicy.of(settings).check_url(url, schemes=schemes)


def check_source(source: str, settings: Any = None) -> str:
    """Check a caller-named data source (a path or URL); returns its protocol (``file`` for
    paths, whose policy is ``security.files``). Chains and unknown protocols are refused."""
    check_chain(source)
    if "://" not in source:
        return "file"
    protocol = source.split("://", 1)[0].lower()
    if protocol in LOCAL_PROTOCOLS:
        return "file" if protocol != "memory" else protocol
    if protocol not in (*HTTP, *ARTIFACT_PROTOCOLS):
        raise EgressDenied(
            f"the protocol {protocol!r} is not accepted from callers: use a path, http(s)://, "
            "s3:// or gs://",
            details={"policy": "security.egress"},
        )
    check_url(source, settings, schemes=(*HTTP, *ARTIFACT_PROTOCOLS))
    return protocol


def check_source_name(source: str, settings: Any = None) -> None:
    """:func:`check_source` without a DNS lookup (the publish edge, on the event loop):
    chains, protocols, literal addresses and loopback/metadata names. The fetch checks the
    resolved addresses."""
    check_chain(source)
    if "://" not in source:
        return
    protocol = source.split("://", 1)[0].lower()
    if protocol in LOCAL_PROTOCOLS:
        return
    if protocol not in (*HTTP, *ARTIFACT_PROTOCOLS):
        check_source(source, settings)  # raises: the protocol is refused
    if protocol in HTTP:
        EgressPolicy.of(settings).check_url(source, resolve=False)


def embedder_url(ref: str) -> str | None:
    """The endpoint of an ``openai:<model>@<url>`` embedding model reference."""
    if not ref.strip().lower().startswith("openai:"):
        return None
    return ref.rpartition("@")[2] or None


def _url_fields(type_: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, value) of the fields of message ``type_`` that make the server fetch a URL."""
    out: list[tuple[str, str]] = []
    if type_ in ("documents.ingest.requested", "dataset.register"):
        out.append(("source", str(data.get("source") or "")))
    elif type_ in ("finetune.requested", "demo.requested"):
        value = data.get("dataset")
        if isinstance(value, str) and "://" in value:
            out.append(("source", value))
    elif type_ == "evaluation.requested":
        target = str(data.get("target") or "")
        if target.lower().startswith(("http://", "https://")):
            out.append(("url", target.partition("#")[0]))
    elif type_ == "collection.reindex.requested":
        url = embedder_url(str(data.get("embedding_model") or ""))
        if url:
            out.append(("url", url))
    elif type_ in ("deployment.requested", "deployment.traffic.changed"):
        for t in data.get("targets" if type_ == "deployment.requested" else "add") or []:
            opts = t.get("options") if isinstance(t, Mapping) else None
            if t.get("backend") == "openai" and isinstance(opts, Mapping):
                out.append(("url", str(opts.get("base_url") or "")))
    return [(k, v) for k, v in out if v]


def check_message_urls(type_: str, message: Any, settings: Any = None) -> None:
    """The publish edge: refuse (403) a message whose URL fields the egress policy refuses,
    without DNS lookups (jobs re-check with the resolved addresses when they fetch)."""
    data = message.payload() if hasattr(message, "payload") else message
    if not isinstance(data, Mapping):
        return
    policy = EgressPolicy.of(settings)
    for kind, value in _url_fields(type_, data):
        if kind == "source":
            check_source_name(value, policy)
        else:
            policy.check_url(value, resolve=False)


# transports -------------------------------------------------------------------------------
class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves and checks the host itself, then connects to the checked address."""

    def __init__(self, inner: httpcore.NetworkBackend, policy: EgressPolicy) -> None:
        self.inner = inner
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.policy.resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        error: Exception | None = None
        for ip in addresses:
            try:
                return self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise EgressDenied("unix sockets are not reachable for callers")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend, policy: EgressPolicy) -> None:
        self.inner = inner
        self.policy = policy

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.aresolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        error: Exception | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressDenied("unix sockets are not reachable for callers")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _request_check(policy: EgressPolicy, request: httpx.Request) -> None:
    url = request.url
    policy.check_host(url.scheme, url.host, url.port or _default_port(url.scheme))


class EgressTransport(httpx.HTTPTransport):
    """An httpx transport that checks every request (redirect hops too) against the policy
    and connects only to addresses it checked."""

    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        kwargs.pop("proxy", None)  # a proxy would resolve names itself
        super().__init__(**kwargs)
        self.policy = policy
        pool = self._pool
        pool._network_backend = _GuardedBackend(pool._network_backend, policy)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _request_check(self.policy, request)
        return super().handle_request(request)


class AsyncEgressTransport(httpx.AsyncHTTPTransport):
    """The async twin of :class:`EgressTransport`."""

    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        kwargs.pop("proxy", None)
        super().__init__(**kwargs)
        self.policy = policy
        pool = self._pool
        pool._network_backend = _AsyncGuardedBackend(pool._network_backend, policy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _request_check(self.policy, request)
        return await super().handle_async_request(request)


def egress_client(settings: Any = None, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` whose every request (and redirect hop) obeys the egress policy."""
    kwargs.setdefault("follow_redirects", True)
    kwargs.setdefault("max_redirects", 5)
    return httpx.Client(transport=EgressTransport(EgressPolicy.of(settings)), **kwargs)


def async_egress_client(settings: Any = None, **kwargs: Any) -> httpx.AsyncClient:
    """The async twin of :func:`egress_client`."""
    kwargs.setdefault("follow_redirects", True)
    kwargs.setdefault("max_redirects", 5)
    return httpx.AsyncClient(transport=AsyncEgressTransport(EgressPolicy.of(settings)), **kwargs)


def fetch_bytes(url: str, settings: Any, max_bytes: int, *, timeout: float = 60.0) -> bytes:
    """GET ``url`` under the policy, reading at most ``max_bytes + 1`` bytes."""
    check_url(url, settings)
    with egress_client(settings, timeout=timeout) as client, client.stream("GET", url) as r:
        r.raise_for_status()
        data = bytearray()
        for chunk in r.iter_bytes():
            data += chunk
            if len(data) > max_bytes:
                break
        return bytes(data)


__all__ = [
    "ARTIFACT_PROTOCOLS",
    "HTTP",
    "AsyncEgressTransport",
    "EgressDenied",
    "EgressPolicy",
    "EgressTransport",
    "address_class",
    "async_egress_client",
    "check_chain",
    "check_message_urls",
    "check_source",
    "check_source_name",
    "check_url",
    "egress_client",
    "embedder_url",
    "fetch_bytes",
]
