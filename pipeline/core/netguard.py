"""No requests to private addresses from a public Space.

On a Hugging Face Space (``SYSTEM=spaces``) anyone can type a URL into the app (a model server's "Base URL", an
Inference Endpoint, an Argilla URL), and the *server* connects to it. Without a check a visitor could make the
Space reach its own network: loopback services, private ranges, link-local and cloud metadata addresses. This module
owns that check; the modules that own the connections call it (``pipeline.inference`` for model servers,
``pipeline.argilla`` for Argilla), so the app and the CLI refuse the same addresses with the same message.

What it promises:

- On a Space, an address is allowed only if it is globally routable (``ipaddress``' ``is_global``): loopback
  (127.0.0.0/8, ::1), private ranges (10/8, 172.16/12, 192.168/16, IPv6 ULA fc00::/7), link-local (169.254/16 with
  the cloud metadata address 169.254.169.254, fe80::/10), the unspecified address (0.0.0.0, ::), shared/CGNAT space
  (100.64/10, where some clouds keep their metadata service), multicast and reserved ranges are refused, also when
  written as an IPv4-mapped, NAT64 or 6to4 IPv6 address.
- A host name is checked by what it resolves to (every address it resolves to must be allowed): once up front
  (:func:`check_url`, before any work) and again for every request at the moment it is sent (:func:`check_request`
  and :func:`acheck_request`, request hooks for ``httpx``/``httpx2`` clients; :func:`install_hf_guard` puts them on
  the clients ``huggingface_hub`` creates), so a public name that resolves to a private address, or starts to after
  the first check, is refused too. A name that does not resolve is refused on a Space (it could not be checked).
- Run locally (``SYSTEM`` unset) everything is allowed: local model servers are the point there. No DNS lookup
  happens then.
- Refusals raise :class:`AddressRefused` whose message says what was refused, why, and what to do.

Only the standard library (``ipaddress``, ``socket``) is used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_HINT = (
    "On a public Space, DPO Studio never connects to loopback, private-network, link-local or cloud-metadata "
    "addresses, so that no visitor can make this server reach its own network. Use a public address (for example "
    "an https:// Inference Endpoint or a model server reachable from the internet), or run DPO Studio on your own "
    "machine (scripts/app, or python -m pipeline) to use a local server."
)


class AddressRefused(Exception):
    """A connection the app will not make; ``str(exc)`` is the message for people (what, why, what to do)."""

    def __init__(self, message: str, host: str = "", address: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.address = address


def on_space() -> bool:
    """Whether the app runs on a Hugging Face Space (where the check applies)."""
    return os.environ.get("SYSTEM") == "spaces"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be reached from a Space ("a loopback address", ...), or None if it is public."""
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


def resolve(host: str, port: int | None = None) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal is returned as it is). Raises ``OSError``."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    return _addresses(str(info[4][0]) for info in infos)


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
            raise AddressRefused(f"{what}: {where}. {_HINT}", host=host, address=str(ip))


def _unresolvable(host: str, what: str, exc: OSError) -> AddressRefused:
    return AddressRefused(
        f"{what}: the name {host!r} does not resolve ({exc.strerror or exc}), so this Space cannot check where it "
        "points. Check the spelling of the URL.",
        host=host,
    )


def check_host(host: str, port: int | None = None, *, what: str = "This address") -> None:
    """Raise :class:`AddressRefused` if, on a Space, ``host`` is or resolves to an address it may not reach."""
    if not on_space():
        return
    host = (host or "").strip()
    if not host:
        raise AddressRefused(f"{what}: the URL has no host name. Give a full URL like https://example.org/v1.")
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise _unresolvable(host, what, exc) from None
    if not addresses:
        raise _unresolvable(host, what, OSError("no address"))
    _refuse(host, addresses, what)


def check_url(url: str, *, what: str = "This URL") -> None:
    """:func:`check_host` for the host of ``url`` (a malformed URL is left to the caller's own check)."""
    if not on_space():
        return
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError:
        return
    if parts.hostname:
        check_host(parts.hostname, port or (443 if parts.scheme == "https" else 80), what=what)


def _request_target(request: Any) -> tuple[str, int | None, str]:
    url = request.url
    host = url.host if isinstance(url.host, str) else url.host.decode("ascii")
    return host, url.port, f"The request to {url.scheme}://{host}"


def check_request(request: Any) -> None:
    """Request hook for ``httpx.Client`` / ``httpx2.Client`` (``event_hooks={"request": [check_request]}``):
    checks every request, redirects included, as it is sent."""
    if on_space():
        host, port, what = _request_target(request)
        check_host(host, port, what=what)


async def acheck_request(request: Any) -> None:
    """Request hook for ``httpx.AsyncClient`` / ``httpx2.AsyncClient``; resolves without blocking the loop."""
    if not on_space():
        return
    host, port, what = _request_target(request)
    if _literal(host) is None:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise _unresolvable(host, what, exc) from None
        addresses = _addresses(str(info[4][0]) for info in infos)
        if not addresses:
            raise _unresolvable(host, what, OSError("no address"))
    else:
        addresses = resolve(host, port)
    _refuse(host, addresses, what)


_INSTALLED = False
_INSTALL_LOCK = threading.Lock()


def install_hf_guard() -> None:
    """Make every HTTP client ``huggingface_hub`` creates (``InferenceClient``, ``AsyncInferenceClient``, Hub calls)
    check each request with :func:`check_request` / :func:`acheck_request`, through its public
    ``set_client_factory`` / ``set_async_client_factory``. Idempotent; cheap when not on a Space."""
    global _INSTALLED
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        from huggingface_hub import set_async_client_factory, set_client_factory

        # The library's own factories (not re-exported; huggingface_hub is pinned in requirements.txt): the
        # clients keep every default (Hub request hook, redirects, time-outs) and gain one request hook.
        from huggingface_hub.utils._http import default_async_client_factory, default_client_factory

        def client():
            made = default_client_factory()
            hooks = made.event_hooks
            made.event_hooks = {**hooks, "request": [*hooks.get("request", []), check_request]}
            return made

        def async_client():
            made = default_async_client_factory()
            hooks = made.event_hooks
            made.event_hooks = {**hooks, "request": [*hooks.get("request", []), acheck_request]}
            return made

        set_client_factory(client)
        set_async_client_factory(async_client)
        _INSTALLED = True
