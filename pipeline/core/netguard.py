"""No requests to private addresses from an app that serves the public.

Anyone who can open a public DPO Studio can type a URL into it (a model server's "Base URL", an Inference
Endpoint, an Argilla URL), and the *server* connects to it. Without a check a visitor could make the server reach
its own network: loopback services, private ranges, link-local and cloud metadata addresses. This module owns that
check; the modules that own the connections use it (``pipeline.inference`` for model servers, ``pipeline.argilla``
for Argilla), so the app and the CLI refuse the same addresses with the same message.

What it promises:

- **When it is on.** The guard is on (:func:`active`) whenever the app serves beyond this machine: on a Hugging
  Face Space (``SYSTEM=spaces``), when ``app.py`` launches on a non-loopback server name (``0.0.0.0``, a LAN
  address, a host name that resolves beyond loopback) or with ``share=True`` (:func:`launch_reason`, then
  :func:`enable`), or when the setting ``DPO_STUDIO_GUARD=1`` turns it on (for a container or a reverse proxy in
  front of a loopback app, and for the CLI). It is off only for a local run (the app on loopback, or the CLI),
  where local model servers are the point; then no DNS lookup happens and every address is allowed.
- **What is refused.** An address is allowed only if it is globally routable (``ipaddress``' ``is_global``):
  loopback (127.0.0.0/8, ::1), private ranges (10/8, 172.16/12, 192.168/16, IPv6 ULA fc00::/7), link-local
  (169.254/16 with the cloud metadata address 169.254.169.254, fe80::/10), the unspecified address (0.0.0.0, ::),
  shared/CGNAT space (100.64/10, where some clouds keep their metadata service), multicast and reserved ranges are
  refused, also when written as an IPv4-mapped, NAT64 or 6to4 IPv6 address. A host name is checked by every
  address it resolves to; a name that does not resolve is refused (it could not be checked).
- **Connections go to the address that was checked.** The transports made here (:func:`httpx_transport`,
  :func:`httpx2_transport`, :func:`httpx2_async_transport`; ``httpx`` is what the Argilla SDK uses, ``httpx2``
  what ``huggingface_hub`` uses) resolve each request's host once, check every address, and connect to a checked
  address: the request goes out with that IP in its URL, the name in its ``Host`` header and as the TLS server
  name (httpcore's ``sni_hostname`` extension, so certificates are still verified against the name). A name that
  answers a public address to the check and a private one a moment later (DNS rebinding) cannot redirect the
  connection, and each redirect is a new request, checked and pinned again. Connections are pooled per host name,
  so a TLS connection opened for one name is never reused for another.
- :func:`install_hf_guard` gives every client ``huggingface_hub`` creates (``InferenceClient``,
  ``AsyncInferenceClient``, Hub calls) such a transport, through its public ``set_client_factory`` /
  ``set_async_client_factory``; the Argilla SDK takes one through ``httpx.Client``'s ``mounts`` (:func:`httpx_mounts`,
  passed as its ``http_client_args``). :func:`check_url` checks a typed URL up front, before any work.
  :func:`check_request` / :func:`acheck_request` stay as request hooks: behind a proxy from the environment
  (``HTTPS_PROXY``), which connects by itself, they still refuse a name that resolves to a private address.
- Names are resolved by one function, :func:`resolve` (``socket.getaddrinfo`` unless :func:`set_resolver` installs
  another, e.g. a test's resolver that answers differently each time).
- Refusals raise :class:`AddressRefused` whose message says what was refused, why, and what to do.

Only the standard library (``ipaddress``, ``socket``) and the HTTP libraries' public transport API are used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]  # (host, port) -> the addresses it resolves to, as text

ENV_GUARD = "DPO_STUDIO_GUARD"  # "1"/"true"/"yes"/"on": the guard is on for this process (app or CLI)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_TRUE = ("1", "true", "yes", "on")


def _hint() -> str:
    return (
        f"This DPO Studio serves the public ({guard_reason() or 'the address guard is on'}), so it never connects "
        "to loopback, private-network, link-local or cloud-metadata addresses: no visitor can make this server "
        "reach its own network. Use a public address (for example an https:// Inference Endpoint or a model server "
        "reachable from the internet), or run DPO Studio on your own machine (scripts/app, or python -m pipeline) "
        "to use a local server."
    )


class AddressRefused(Exception):
    """A connection the app will not make; ``str(exc)`` is the message for people (what, why, what to do)."""

    def __init__(self, message: str, host: str = "", address: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.address = address


# --- when the guard is on --------------------------------------------------------------------------------------
_launch: str | None = None  # why app.py's launch serves the public (enable()), or None


def on_space() -> bool:
    """Whether the app runs on a Hugging Face Space."""
    return os.environ.get("SYSTEM") == "spaces"


def guard_reason() -> str | None:
    """Why the guard is on (words for a message), or None for a local run."""
    if on_space():
        return "a public Space"
    if _launch:
        return _launch
    if os.environ.get(ENV_GUARD, "").strip().lower() in _TRUE:
        return f"{ENV_GUARD} is set"
    return None


def active() -> bool:
    """Whether requests are checked (see the module docstring); False only for a local run."""
    return guard_reason() is not None


def _is_loopback_name(name: str) -> bool:
    literal = _literal(name)
    if literal is not None:
        return literal.is_loopback or (
            isinstance(literal, ipaddress.IPv6Address)
            and literal.ipv4_mapped is not None
            and literal.ipv4_mapped.is_loopback
        )
    try:
        found = _addresses(_RESOLVER(name, 80))
    except OSError:
        return False  # a name that does not resolve here: assume it serves beyond loopback
    return bool(found) and all(ip.is_loopback for ip in found)


def launch_reason(server_name: str | None, share: bool) -> str | None:
    """Why a Gradio launch with these arguments serves beyond this machine, or None for a loopback-only launch.

    ``server_name`` None or empty is Gradio's default, 127.0.0.1. ``0.0.0.0``/``::`` (every interface), a LAN
    address or a name that resolves beyond loopback serve others; ``share=True`` opens a public gradio.live link.
    """
    if share:
        return "the app is shared through a public link (share=True)"
    name = (server_name or "127.0.0.1").strip()
    if not _is_loopback_name(name):
        return f"the app listens on {name}, beyond this machine"
    return None


def enable(reason: str) -> None:
    """Turn the guard on for this process (``app.py`` calls it when its launch serves the public)."""
    global _launch
    _launch = reason


def disable_launch_guard() -> None:
    """Undo :func:`enable` (tests); the environment's settings (``SYSTEM``, ``DPO_STUDIO_GUARD``) still apply."""
    global _launch
    _launch = None


# --- addresses ---------------------------------------------------------------------------------------------------
def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be reached from a public app ("a loopback address", ...), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = refusal_reason(inner)
            if reason:
                return reason
    if ip.is_unspecified:
        return "the unspecified address (this machine)"
    if ip.is_loopback:
        return "a loopback address (this machine)"
    if ip.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a shared (carrier-grade NAT) address, used by some clouds for metadata services"
    if ip.is_private:
        return "a private-network address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved, non-public address"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def system_resolver(host: str, port: int) -> list[str]:
    """The machine's resolver (``socket.getaddrinfo``). Raises ``OSError``."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


_RESOLVER: Resolver = system_resolver


def set_resolver(resolver: Resolver | None) -> Resolver:
    """Resolve names with ``resolver`` from now on (None: the machine's); returns the one it replaces."""
    global _RESOLVER
    previous = _RESOLVER
    _RESOLVER = resolver or system_resolver
    return previous


def resolve(host: str, port: int | None = None) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal is returned as it is). Raises ``OSError``."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    return _addresses(_RESOLVER(host, port or 443))


def _addresses(raw: Iterable[str]) -> list[IPAddress]:
    out: list[IPAddress] = []
    for text in raw:
        ip = _literal(str(text))
        if ip is not None and ip not in out:
            out.append(ip)
    return out


def _refuse(host: str, addresses: list[IPAddress], what: str) -> None:
    literal = _literal(host)
    for ip in addresses:
        reason = refusal_reason(ip)
        if reason:
            where = f"{host!r} is {reason}" if literal is not None else f"{host!r} resolves to {ip}, {reason}"
            raise AddressRefused(f"{what}: {where}. {_hint()}", host=host, address=str(ip))


def _unresolvable(host: str, what: str, exc: OSError) -> AddressRefused:
    return AddressRefused(
        f"{what}: the name {host!r} does not resolve ({exc.strerror or exc}), so this server cannot check where it "
        "points. Check the spelling of the URL.",
        host=host,
    )


def _is_hub(host: str, port: int | None) -> bool:
    """Whether ``host:port`` is the Hub this process is configured with (``HF_ENDPOINT``): set by whoever runs the
    app, never typed by a visitor, so not a visitor's address to refuse (e.g. a test's local fake Hub)."""
    endpoint = os.environ.get("HF_ENDPOINT", "").strip()
    if not endpoint:
        return False
    try:
        parts = urlsplit(endpoint)
        hub_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    return (parts.hostname or "").lower() == host.lower() and (port is None or port == hub_port)


def checked_addresses(host: str, port: int | None = None, *, what: str = "This address") -> list[IPAddress]:
    """Resolve ``host`` once and return its addresses if every one may be reached; else raise
    :class:`AddressRefused`. (Checks whatever the mode: callers decide with :func:`active`.) The configured Hub
    (``HF_ENDPOINT``'s host and port) is always allowed."""
    host = (host or "").strip()
    if not host:
        raise AddressRefused(f"{what}: the URL has no host name. Give a full URL like https://example.org/v1.")
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise _unresolvable(host, what, exc) from None
    if not addresses:
        raise _unresolvable(host, what, OSError("no address"))
    if not _is_hub(host, port):
        _refuse(host, addresses, what)
    return addresses


def check_host(host: str, port: int | None = None, *, what: str = "This address") -> None:
    """Raise :class:`AddressRefused` if the guard is on and ``host`` is or resolves to an address it may not reach."""
    if active():
        checked_addresses(host, port, what=what)


def check_url(url: str, *, what: str = "This URL") -> None:
    """:func:`check_host` for the host of ``url`` (a malformed URL is left to the caller's own check)."""
    if not active():
        return
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError:
        return
    if parts.hostname:
        check_host(parts.hostname, port or (443 if parts.scheme == "https" else 80), what=what)


def _request_target(request: Any) -> tuple[str, int, str]:
    url = request.url
    host = url.host if isinstance(url.host, str) else url.host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    return host, port, f"The request to {url.scheme}://{host}"


def check_request(request: Any) -> None:
    """Request hook for ``httpx.Client`` / ``httpx2.Client`` (``event_hooks={"request": [check_request]}``)."""
    if active():
        host, port, what = _request_target(request)
        checked_addresses(host, port, what=what)


async def acheck_request(request: Any) -> None:
    """Request hook for ``httpx.AsyncClient`` / ``httpx2.AsyncClient``; resolves without blocking the loop."""
    if active():
        host, port, what = _request_target(request)
        await asyncio.to_thread(checked_addresses, host, port, what=what)


# --- transports that connect to the checked address ------------------------------------------------------------
def pinned_requests(lib: Any, request: Any, addresses: list[IPAddress]) -> list[Any]:
    """Copies of ``request`` (an ``httpx``/``httpx2`` request, ``lib`` its module) aimed at each checked address: the IP in the URL, the name in the ``Host`` header
    (already there: httpx sets it when the request is built) and as the TLS server name."""
    host, _, _ = _request_target(request)
    out = []
    for ip in addresses:
        out.append(
            lib.Request(
                request.method,
                request.url.copy_with(host=str(ip)),
                headers=request.headers,
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": host},
            )
        )
    return out


class _Pools:
    """One inner transport (connection pool) per host name, made on first use with the same settings."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._pools: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.plain = make()  # the guard is off: requests go as they are

    def for_host(self, host: str) -> Any:
        with self._lock:
            pool = self._pools.get(host)
            if pool is None:
                pool = self._pools[host] = self._make()
            return pool

    def all(self) -> list[Any]:
        with self._lock:
            return [self.plain, *self._pools.values()]


def _transport_classes(lib: Any) -> tuple[type, type]:
    """A guarded sync and async transport for ``lib`` (``httpx`` or ``httpx2``, which share this API)."""

    class GuardedTransport(lib.BaseTransport):
        """``lib.HTTPTransport`` (or what ``inner`` makes) that, while the guard is on, connects only to checked
        addresses."""

        def __init__(self, inner: Callable[[], Any] | None = None, **kwargs: Any) -> None:
            self._pools = _Pools(inner or (lambda: lib.HTTPTransport(**kwargs)))

        def handle_request(self, request: Any) -> Any:
            if not active():
                return self._pools.plain.handle_request(request)
            host, port, what = _request_target(request)
            pool = self._pools.for_host(host)
            last: Exception | None = None
            for pinned in pinned_requests(lib, request, checked_addresses(host, port, what=what)):
                try:
                    return pool.handle_request(pinned)
                except lib.ConnectError as exc:  # this address is down: try the next checked one
                    last = exc
            assert last is not None
            raise last

        def close(self) -> None:
            for pool in self._pools.all():
                pool.close()

    class AsyncGuardedTransport(lib.AsyncBaseTransport):
        """``lib.AsyncHTTPTransport`` (or what ``inner`` makes) that, while the guard is on, connects only to
        checked addresses."""

        def __init__(self, inner: Callable[[], Any] | None = None, **kwargs: Any) -> None:
            self._pools = _Pools(inner or (lambda: lib.AsyncHTTPTransport(**kwargs)))

        async def handle_async_request(self, request: Any) -> Any:
            if not active():
                return await self._pools.plain.handle_async_request(request)
            host, port, what = _request_target(request)
            pool = self._pools.for_host(host)
            addresses = await asyncio.to_thread(checked_addresses, host, port, what=what)
            last: Exception | None = None
            for pinned in pinned_requests(lib, request, addresses):
                try:
                    return await pool.handle_async_request(pinned)
                except lib.ConnectError as exc:
                    last = exc
            assert last is not None
            raise last

        async def aclose(self) -> None:
            for pool in self._pools.all():
                await pool.aclose()

    return GuardedTransport, AsyncGuardedTransport


_CLASSES: dict[str, tuple[type, type]] = {}


def _classes(name: str) -> tuple[type, type]:
    if name not in _CLASSES:
        import importlib

        _CLASSES[name] = _transport_classes(importlib.import_module(name))
    return _CLASSES[name]


def httpx_transport(**kwargs: Any) -> Any:
    """A guarded ``httpx`` transport. ``kwargs``: ``httpx.HTTPTransport``'s (e.g. ``retries``), or ``inner``, a
    function that makes the transport that sends (one per host name; default ``httpx.HTTPTransport(**kwargs)``)."""
    return _classes("httpx")[0](**kwargs)


def httpx_mounts(**kwargs: Any) -> dict[str, Any]:
    """``mounts`` for an ``httpx.Client`` that the caller builds indirectly (the Argilla SDK passes its
    ``http_client_args`` on): every http and https request goes through one guarded transport."""
    transport = httpx_transport(**kwargs)
    return {"http://": transport, "https://": transport}


def httpx2_transport(**kwargs: Any) -> Any:
    """A guarded ``httpx2`` transport (``huggingface_hub``'s HTTP library)."""
    return _classes("httpx2")[0](**kwargs)


def httpx2_async_transport(**kwargs: Any) -> Any:
    """A guarded ``httpx2`` async transport."""
    return _classes("httpx2")[1](**kwargs)


_INSTALLED = False
_INSTALL_LOCK = threading.Lock()


def install_hf_guard() -> None:
    """Make every HTTP client ``huggingface_hub`` creates (``InferenceClient``, ``AsyncInferenceClient``, Hub calls)
    send through a guarded transport and check each request with :func:`check_request` / :func:`acheck_request`,
    through its public ``set_client_factory`` / ``set_async_client_factory``. Idempotent; when the guard is off the
    transport sends requests as they are (no lookup)."""
    global _INSTALLED
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        import httpx2
        from huggingface_hub import set_async_client_factory, set_client_factory

        # The library's own factories (not re-exported; huggingface_hub is pinned in requirements.txt) give the
        # defaults to keep (its request hooks, redirects, time-outs); the client is rebuilt with the guarded
        # transport and one more request hook.
        from huggingface_hub.utils._http import default_async_client_factory, default_client_factory

        def client() -> Any:
            with default_client_factory() as made:
                hooks = made.event_hooks
                return httpx2.Client(
                    transport=httpx2_transport(),
                    event_hooks={**hooks, "request": [*hooks.get("request", []), check_request]},
                    follow_redirects=made.follow_redirects,
                    timeout=made.timeout,
                )

        def async_client() -> Any:
            made = default_async_client_factory()
            hooks = made.event_hooks
            return httpx2.AsyncClient(
                transport=httpx2_async_transport(),
                event_hooks={**hooks, "request": [*hooks.get("request", []), acheck_request]},
                follow_redirects=made.follow_redirects,
                timeout=made.timeout,
            )

        set_client_factory(client)
        set_async_client_factory(async_client)
        _INSTALLED = True
