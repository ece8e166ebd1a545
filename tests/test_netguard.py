"""No requests to private addresses from an app that serves the public; everything allowed for a local run.

The address guard (``pipeline.core.netguard``) is tested in every public mode (fixture ``public``: a Space, the
``DPO_STUDIO_GUARD`` setting, ``app.py`` launched on a non-loopback server name, ``share=True``) for every address
class, for host names that resolve to such addresses (``localhost`` through the machine's real resolver; other names
through an injected resolver, :func:`netguard.set_resolver`), for redirects and DNS rebinding (a name that answers a
public address, then a private one: the connection goes to the address that was checked), and where the app and the
CLI connect: a model server's base URL (``pipeline.inference``, also when a request is already under way), the real
Argilla stack's probe and SDK calls (``pipeline.argilla``) and ``python -m pipeline generate``, which must refuse
before any call.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import httpx2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import argilla as argilla_io
from pipeline import inference
from pipeline.core import netguard
from pipeline.inference import Backend, GenParams, InferenceError

ROOT = Path(__file__).resolve().parent.parent

REFUSED = {
    "loopback": "127.0.0.1",
    "loopback (other)": "127.10.20.30",
    "10/8": "10.1.2.3",
    "172.16/12": "172.16.0.1",
    "172.16/12 (top)": "172.31.255.254",
    "192.168/16": "192.168.1.1",
    "169.254/16 (cloud metadata)": "169.254.169.254",
    "0.0.0.0": "0.0.0.0",
    "100.64/10 (shared, Alibaba metadata)": "100.100.100.200",
    "IPv6 loopback": "::1",
    "IPv6 ULA": "fd00::1",
    "IPv6 ULA (AWS metadata)": "fd00:ec2::254",
    "IPv6 link-local": "fe80::1",
    "IPv6 unspecified": "::",
    "IPv4-mapped loopback": "::ffff:127.0.0.1",
    "IPv4-mapped metadata": "::ffff:169.254.169.254",
    "NAT64 private": "64:ff9b::10.0.0.1",
    "6to4 private": "2002:c0a8:0101::1",
    "multicast": "224.0.0.1",
}
PUBLIC = ["1.1.1.1", "8.8.8.8", "172.32.0.1", "2606:4700:4700::1111"]
PUBLIC_IP = "93.184.216.34"  # what a test resolver answers for a "public" name (never connected: inner mocks)


PUBLIC_MODES = ("space", "setting", "server name", "share")


def _go_local(monkeypatch) -> None:
    monkeypatch.delenv("SYSTEM", raising=False)
    monkeypatch.delenv(netguard.ENV_GUARD, raising=False)
    netguard.disable_launch_guard()


def _go_public(monkeypatch, mode: str) -> None:
    _go_local(monkeypatch)
    if mode == "space":
        monkeypatch.setenv("SYSTEM", "spaces")
    elif mode == "setting":
        monkeypatch.setenv(netguard.ENV_GUARD, "1")
    elif mode == "server name":
        netguard.enable(netguard.launch_reason("0.0.0.0", False) or "")
    elif mode == "share":
        netguard.enable(netguard.launch_reason("127.0.0.1", True) or "")
    assert netguard.active(), mode


@pytest.fixture(params=PUBLIC_MODES)
def public(request, monkeypatch):
    """The guard on, in each way an app can serve the public."""
    _go_public(monkeypatch, request.param)
    yield request.param
    netguard.disable_launch_guard()


@pytest.fixture
def on_space(monkeypatch):
    _go_public(monkeypatch, "space")


@pytest.fixture
def local(monkeypatch):
    _go_local(monkeypatch)


class Resolver:
    """A resolver for :func:`netguard.set_resolver`: ``answers[name]`` is a list of answers, one per lookup (the last
    repeats), so a name can answer a public address first and a private one after (DNS rebinding)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        seen = self.calls.count(host)
        options = self.answers[host]
        return options[min(seen, len(options)) - 1]


@pytest.fixture
def resolver():
    """Install a :class:`Resolver` (answers set by the test); the machine's resolver again afterwards."""
    fake = Resolver({})
    previous = netguard.set_resolver(fake)
    yield fake
    netguard.set_resolver(previous)


def _url(ip: str) -> str:
    return f"http://[{ip}]:8080/v1" if ":" in ip else f"http://{ip}:8080/v1"


@pytest.mark.parametrize("ip", REFUSED.values(), ids=REFUSED.keys())
def test_each_private_address_class_is_refused_in_every_public_mode(public, ip):
    with pytest.raises(netguard.AddressRefused) as caught:
        netguard.check_url(_url(ip), what="The base URL")
    message = str(caught.value)
    assert message.startswith("The base URL: ") and "serves the public" in message and "own machine" in message
    assert netguard.guard_reason() in message  # says why the guard is on (a Space, the setting, the launch)


@pytest.mark.parametrize("ip", REFUSED.values(), ids=REFUSED.keys())
def test_each_private_address_class_is_allowed_locally(local, ip):
    netguard.check_url(_url(ip))  # no exception: local model servers are the point there


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_allowed_on_a_space(on_space, ip):
    assert netguard.refusal_reason(netguard.resolve(ip)[0]) is None
    netguard.check_url(_url(ip))


def test_the_message_names_the_kind_of_address(on_space):
    reasons = {
        ip: netguard.refusal_reason(netguard.resolve(ip)[0])
        for ip in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1")
    }
    assert "loopback" in reasons["127.0.0.1"] and "loopback" in reasons["::1"]
    assert "private" in reasons["10.0.0.1"]
    assert "metadata" in reasons["169.254.169.254"]


def test_a_hostname_is_checked_by_what_it_resolves_to(public):
    """``localhost`` is a name: the machine's resolver turns it into a loopback address, which is refused."""
    resolved = {info[4][0] for info in socket.getaddrinfo("localhost", 80)}
    assert resolved, "localhost does not resolve here: the test would prove nothing"
    with pytest.raises(netguard.AddressRefused) as caught:
        netguard.check_url("http://localhost:8080/v1")
    assert "'localhost' resolves to" in str(caught.value) and "loopback" in str(caught.value)


def test_a_name_that_does_not_resolve_is_refused_on_a_space_with_a_reason(on_space):
    with pytest.raises(netguard.AddressRefused, match="does not resolve"):
        netguard.check_host("no-such-host.invalid")


def test_locally_no_lookup_happens(local, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("DNS lookup while running locally")

    monkeypatch.setattr(socket, "getaddrinfo", boom)
    netguard.check_url("http://no-such-host.invalid:1/v1")


# --- where the app and the CLI connect -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["openai", "endpoint"])
def test_backend_validate_refuses_a_private_base_url_on_a_space(on_space, kind):
    with pytest.raises(InferenceError) as caught:
        Backend(kind, "m", "http://localhost:8080/v1").validate()
    assert caught.value.kind == "bad_request" and "loopback" in caught.value.message


def test_backend_validate_allows_a_local_server_when_run_locally(local):
    Backend("openai", "m", "http://127.0.0.1:8080/v1").validate()


def test_a_request_is_checked_again_when_it_is_sent(on_space, faulty_server):
    """The check at connection time: a request already under way (validated before the name pointed elsewhere)
    is refused by the hook on huggingface_hub's clients, and the fake server never sees it."""
    backend = Backend("openai", "m", faulty_server.base_url)
    before = len(faulty_server.requests)
    hook_error = None
    request = httpx2.Request("POST", faulty_server.base_url + "/chat/completions")
    try:
        netguard.check_request(request)
    except netguard.AddressRefused as exc:
        hook_error = exc
    assert hook_error is not None and "loopback" in hook_error.message
    # through the real client path, skipping the up-front check (as if DNS had changed after it)
    kwargs = {"base_url": faulty_server.base_url, "api_key": "no-key", "timeout": 5}
    from huggingface_hub import AsyncInferenceClient, InferenceClient

    with pytest.raises(netguard.AddressRefused):
        InferenceClient(**kwargs).chat_completion(messages=[{"role": "user", "content": "hi"}], model="m")

    async def call_async():
        async with AsyncInferenceClient(**kwargs) as client:
            await client.chat_completion(messages=[{"role": "user", "content": "hi"}], model="m")

    with pytest.raises(netguard.AddressRefused):
        asyncio.run(call_async())
    assert len(faulty_server.requests) == before, "a refused request reached the server"
    mapped = inference.to_inference_error(hook_error, backend)
    assert mapped.kind == "bad_request" and not mapped.retryable and "loopback" in mapped.message


def test_a_local_run_reaches_the_local_server(local, faulty_server):
    result = inference.chat(
        Backend("openai", "m", faulty_server.base_url),
        [{"role": "user", "content": "hi"}],
        GenParams(max_new_tokens=8),
        None,
    )
    assert result.text


def test_listing_models_refuses_a_private_server_on_a_space(on_space, faulty_server):
    with pytest.raises(InferenceError, match="loopback"):
        inference.list_models(Backend("openai", "m", faulty_server.base_url), None)


def test_argilla_connect_refuses_a_private_url_on_a_space_before_sending_the_key(on_space, faulty_server):
    before = len(faulty_server.requests)
    with pytest.raises(argilla_io.ArgillaIOError) as caught:
        argilla_io.connect(faulty_server.base_url.rsplit("/v1", 1)[0], "secret-argilla-key")
    assert "loopback" in str(caught.value) and "secret-argilla-key" not in str(caught.value)
    assert len(faulty_server.requests) == before


# --- Argilla: the real probe and SDK calls against the real local stack --------------------------------------------
def test_argilla_connect_refuses_the_local_stack_in_every_public_mode(public, argilla_stack):
    with pytest.raises(argilla_io.ArgillaIOError) as caught:
        argilla_io.connect(argilla_stack.url, argilla_stack.api_key)
    assert "loopback" in str(caught.value) and argilla_stack.api_key not in str(caught.value)


def test_argilla_probe_refuses_a_name_that_rebinds_to_the_local_stack(public, resolver, argilla_stack):
    """The up-front check sees a public address; the probe's own request then resolves the name again and is
    refused (the stack's port is real: without the guard the probe would have reached it)."""
    port = urlsplit(argilla_stack.url).port
    resolver.answers["argilla.example"] = [[PUBLIC_IP], ["127.0.0.1"]]
    with pytest.raises(argilla_io.ArgillaIOError) as caught:
        argilla_io.connect(f"http://argilla.example:{port}", argilla_stack.api_key)
    assert "loopback" in str(caught.value) and argilla_stack.api_key not in str(caught.value)
    assert resolver.calls.count("argilla.example") >= 2, "the probe never resolved the name again"


def test_argilla_sdk_calls_are_refused_once_the_app_serves_the_public(local, monkeypatch, argilla_stack):
    """A connection opened by a local run; the same SDK client's calls are refused as soon as the guard is on."""
    conn = argilla_io.connect(argilla_stack.url, argilla_stack.api_key)
    try:
        assert argilla_io.list_workspaces(conn), "the SDK call does not work locally: the test would prove nothing"
        for mode in PUBLIC_MODES:
            _go_public(monkeypatch, mode)
            with pytest.raises(argilla_io.ArgillaIOError, match="loopback"):
                argilla_io.list_workspaces(conn)
            with pytest.raises(netguard.AddressRefused):
                conn.client.me  # noqa: B018 - an SDK request (GET /api/v1/me)
            _go_local(monkeypatch)
        assert argilla_io.list_workspaces(conn)
    finally:
        conn.close()


def test_the_argilla_sdk_sends_through_the_guarded_transport(public, resolver, argilla_stack):
    """What ``connect`` gives the SDK in a public app (``mounts``): its requests are pinned, without any hook."""
    import argilla as rg

    port = urlsplit(argilla_stack.url).port
    resolver.answers["argilla.example"] = [["127.0.0.1"]]
    with pytest.raises(netguard.AddressRefused, match="loopback"):
        rg.Argilla(
            api_url=f"http://argilla.example:{port}",
            api_key=argilla_stack.api_key,
            retries=0,
            mounts=netguard.httpx_mounts(retries=0),
        )
    assert resolver.calls == ["argilla.example"]


@pytest.mark.parametrize("setting", [{"SYSTEM": "spaces"}, {netguard.ENV_GUARD: "1"}], ids=["space", "setting"])
def test_cli_generate_is_refused_before_any_call_when_the_guard_is_on(tmp_path, faulty_server, setting):
    rows = pa.table(
        {"prompt": ["Hoe gaat het?"], "response": ["Goed."], "language": ["Dutch"], "language_code": ["nld"]}
    )
    pq.write_table(rows, tmp_path / "x.parquet")
    env = {k: v for k, v in os.environ.items() if k not in ("SYSTEM", netguard.ENV_GUARD)}
    env.update(setting, PYTHONPATH=str(ROOT))
    before = len(faulty_server.requests)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "generate",
            str(tmp_path / "x.parquet"),
            "-o",
            str(tmp_path / "out"),
            "--base-url",
            faulty_server.base_url,
            "--model",
            "m",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "loopback" in done.stderr and "serves the public" in done.stderr, done.stderr
    assert len(faulty_server.requests) == before, "the CLI called the server before refusing"
    assert not (tmp_path / "out").exists(), "the CLI started a run before refusing"
    # the same command runs locally: the CLI is a local run unless a setting turns the guard on
    for key in setting:
        env.pop(key)
    local_run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "generate",
            str(tmp_path / "x.parquet"),
            "-o",
            str(tmp_path / "out"),
            "--base-url",
            faulty_server.base_url,
            "--model",
            "m",
            "--dry-run",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert local_run.returncode == 0, local_run.stderr


# --- when the guard is on ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [None, "", "127.0.0.1", "127.0.0.5", "localhost", "::1"])
def test_a_loopback_launch_is_a_local_run(local, name):
    assert netguard.launch_reason(name, False) is None
    assert not netguard.active()


@pytest.mark.parametrize("name", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.7", "studio.example", "no-such.invalid"])
def test_a_launch_beyond_loopback_turns_the_guard_on(local, resolver, name):
    resolver.answers["studio.example"] = [["192.168.1.20"]]
    reason = netguard.launch_reason(name, False)
    assert reason is not None and name in reason
    netguard.enable(reason)
    try:
        assert netguard.active() and netguard.guard_reason() == reason
    finally:
        netguard.disable_launch_guard()


def test_app_launch_decides_the_mode_from_its_launch_arguments(local, monkeypatch):
    import app

    monkeypatch.delenv("GRADIO_SHARE", raising=False)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "127.0.0.1")
    assert app.guard_for_launch(app.launch_options()) is None and not netguard.active()
    try:
        monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
        options = app.launch_options()
        assert options == {"server_name": "0.0.0.0", "share": False}  # what main() passes to launch()
        assert "0.0.0.0" in (app.guard_for_launch(options) or "") and netguard.active()
        netguard.disable_launch_guard()
        monkeypatch.setenv("GRADIO_SERVER_NAME", "127.0.0.1")
        monkeypatch.setenv("GRADIO_SHARE", "True")
        assert app.launch_options()["share"] is True
        assert "share=True" in (app.guard_for_launch(app.launch_options()) or "") and netguard.active()
    finally:
        netguard.disable_launch_guard()


def test_the_app_launched_beyond_loopback_starts_with_the_guard_on(tmp_path):
    """The real start-up (``app.main()`` in a subprocess, fixture helper ``launch_app``) on 0.0.0.0."""
    from tests.fixtures.app_server import launch_app

    app = launch_app(tmp_path / "app", {"GRADIO_SERVER_NAME": "0.0.0.0", "HF_ENDPOINT": "http://127.0.0.1:9"})
    try:
        log = app.log_text()
    finally:
        app.stop()
    assert "Private-address guard: on (the app listens on 0.0.0.0, beyond this machine)" in log, log[-2000:]


# --- connections go to the address that was checked ----------------------------------------------------------------
LIBS = {"httpx": (httpx, netguard.httpx_transport), "httpx2": (httpx2, netguard.httpx2_transport)}


def _inner(lib, seen: list, reply=None):
    """An inner transport (``MockTransport``) that records what the guarded transport sends it."""

    def handler(request):
        seen.append(request)
        return reply(request) if reply else lib.Response(200, json={"ok": True})

    return lambda: lib.MockTransport(handler)


@pytest.mark.parametrize("name", LIBS)
def test_the_connection_goes_to_the_address_that_was_checked(public, resolver, name):
    """DNS rebinding: the name answers a public address, then loopback. The request goes to the address the check
    saw (one lookup), with the name as Host and TLS server name; the next request sees loopback and is refused."""
    lib, make = LIBS[name]
    resolver.answers["rebind.example"] = [[PUBLIC_IP], ["127.0.0.1"]]
    seen: list = []
    with lib.Client(transport=make(inner=_inner(lib, seen))) as client:
        assert client.get("https://rebind.example:8443/v1/models").json() == {"ok": True}
        sent = seen[0]
        assert (sent.url.host, sent.url.port, sent.url.path) == (PUBLIC_IP, 8443, "/v1/models")
        assert sent.headers["host"] == "rebind.example:8443"
        assert sent.extensions["sni_hostname"] == "rebind.example"
        assert resolver.calls == ["rebind.example"], "the check and the connection did not share one lookup"
        with pytest.raises(netguard.AddressRefused, match="loopback"):
            client.get("https://rebind.example:8443/v1/models")
    assert len(seen) == 1


def test_the_async_transport_connects_to_the_checked_address(public, resolver):
    resolver.answers["rebind.example"] = [[PUBLIC_IP], ["::ffff:127.0.0.1"]]
    seen: list = []

    async def run():
        transport = netguard.httpx2_async_transport(inner=_inner(httpx2, seen))
        async with httpx2.AsyncClient(transport=transport) as client:
            await client.get("http://rebind.example/x")
            with pytest.raises(netguard.AddressRefused, match="loopback"):
                await client.get("http://rebind.example/x")

    asyncio.run(run())
    assert len(seen) == 1 and seen[0].url.host == PUBLIC_IP and seen[0].headers["host"] == "rebind.example"


NAMED = {
    "IPv4-mapped loopback": ["::ffff:127.0.0.1"],
    "IPv4-mapped metadata": ["::ffff:169.254.169.254"],
    "metadata": ["169.254.169.254"],
    "IPv6 link-local": ["fe80::1"],
    "AWS IPv6 metadata": ["fd00:ec2::254"],
    "private": ["10.1.2.3"],
    "public and private": [PUBLIC_IP, "192.168.0.10"],
}


@pytest.mark.parametrize("answer", NAMED.values(), ids=NAMED.keys())
def test_a_name_that_resolves_to_a_private_address_is_never_connected(public, resolver, answer):
    resolver.answers["inside.example"] = [answer]
    seen: list = []
    with httpx2.Client(transport=netguard.httpx2_transport(inner=_inner(httpx2, seen))) as client:
        with pytest.raises(netguard.AddressRefused):
            client.get("http://inside.example/latest/meta-data/")
    assert not seen


REDIRECTS = {
    "loopback": "http://127.0.0.1:{port}/v1/models",
    "IPv4-mapped": "http://[::ffff:127.0.0.1]:{port}/v1/models",
    "metadata": "http://169.254.169.254/latest/meta-data/",
    "IPv6 link-local": "http://[fe80::1]/",
    "name of a private address": "http://intranet.example:{port}/admin",
}


@pytest.mark.parametrize("name", LIBS)
@pytest.mark.parametrize("target", REDIRECTS.values(), ids=REDIRECTS.keys())
def test_a_redirect_to_a_private_address_is_refused(public, resolver, faulty_server, name, target):
    """A public server answers 302 to a private address: the redirect is a new request, checked and refused; the
    loopback server behind it never sees it."""
    lib, make = LIBS[name]
    port = urlsplit(faulty_server.base_url).port
    resolver.answers["public.example"] = [[PUBLIC_IP]]
    resolver.answers["intranet.example"] = [["127.0.0.1"]]
    seen: list = []

    def redirect(request):
        return lib.Response(302, headers={"Location": target.format(port=port)})

    before = len(faulty_server.requests)
    with lib.Client(transport=make(inner=_inner(lib, seen, redirect)), follow_redirects=True) as client:
        with pytest.raises(netguard.AddressRefused):
            client.get("https://public.example/start")
    assert len(seen) == 1 and len(faulty_server.requests) == before


def test_a_model_server_name_that_rebinds_after_the_check_is_refused(public, resolver, faulty_server):
    """Through the app's own path (``Backend.validate``, then ``inference.chat`` on huggingface_hub's client with
    the guarded transport): the check up front sees a public address, the request's lookup loopback."""
    port = urlsplit(faulty_server.base_url).port
    resolver.answers["models.example"] = [[PUBLIC_IP], ["127.0.0.1"]]
    backend = Backend("openai", "m", f"http://models.example:{port}/v1")
    backend.validate()
    before = len(faulty_server.requests)
    with pytest.raises(InferenceError) as caught:
        inference.chat(backend, [{"role": "user", "content": "hi"}], GenParams(max_new_tokens=8), None)
    assert caught.value.kind == "bad_request" and "loopback" in caught.value.message
    assert len(faulty_server.requests) == before


def test_a_local_run_never_looks_names_up(local, resolver, faulty_server):
    """The guarded transports send requests as they are when the guard is off: no lookup through the resolver."""
    seen: list = []
    with httpx2.Client(transport=netguard.httpx2_transport(inner=_inner(httpx2, seen))) as client:
        client.get("http://anything.example/")
    assert resolver.calls == [] and seen[0].url.host == "anything.example"


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.mark.parametrize("name", LIBS)
def test_a_pinned_https_request_keeps_the_name_for_tls_and_host(tmp_path, name):
    """Over real TLS (a loopback server with a certificate for ``pinned.example``): a request pinned to the IP
    sends the name as TLS server name (SNI) and Host, the certificate is verified against the name, and a name the
    certificate does not cover is refused."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lib, _ = LIBS[name]
    cert, key = _self_signed(tmp_path, "pinned.example")
    server_names: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = self.headers["Host"].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    trust = ssl.create_default_context(cafile=str(cert))
    loopback = [ipaddress.ip_address("127.0.0.1")]
    try:
        request = lib.Request("GET", f"https://pinned.example:{port}/v1/models")
        [pinned] = netguard.pinned_requests(lib, request, loopback)
        assert pinned.url.host == "127.0.0.1"
        with lib.HTTPTransport(verify=trust) as transport:
            response = transport.handle_request(pinned)
            response.read()
        assert response.status_code == 200 and response.text == f"pinned.example:{port}"
        assert server_names == ["pinned.example"]
        other = lib.Request("GET", f"https://other.example:{port}/")
        with lib.HTTPTransport(verify=trust) as transport, pytest.raises(lib.ConnectError):
            transport.handle_request(netguard.pinned_requests(lib, other, loopback)[0])
    finally:
        server.shutdown()
        server.server_close()


def test_the_configured_hub_is_allowed_in_every_public_mode_and_only_it(public, monkeypatch):
    """``HF_ENDPOINT`` is set by whoever runs the app (a test's local fake Hub), not typed by a visitor."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:18123")
    netguard.check_url("http://127.0.0.1:18123/api/whoami-v2", what="The Hub")
    assert netguard.checked_addresses("127.0.0.1", 18123) == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(netguard.AddressRefused):
        netguard.check_url("http://127.0.0.1:18124/v1", what="Another port of the same host")
    with pytest.raises(netguard.AddressRefused):
        netguard.check_url("http://10.0.0.1:18123/v1", what="The same port elsewhere")
