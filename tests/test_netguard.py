"""No requests to private addresses from a public Space (``SYSTEM=spaces``); everything allowed locally.

The address check (``pipeline.core.netguard``) is tested for every address class, for host names that resolve to such
addresses (``localhost`` through the machine's real resolver), and where the app and the CLI connect: a model
server's base URL (``pipeline.inference``, also when a request is already under way), an Argilla URL
(``pipeline.argilla``) and ``python -m pipeline generate``, which must refuse before any call.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

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


@pytest.fixture
def on_space(monkeypatch):
    monkeypatch.setenv("SYSTEM", "spaces")


@pytest.fixture
def local(monkeypatch):
    monkeypatch.delenv("SYSTEM", raising=False)


def _url(ip: str) -> str:
    return f"http://[{ip}]:8080/v1" if ":" in ip else f"http://{ip}:8080/v1"


@pytest.mark.parametrize("ip", REFUSED.values(), ids=REFUSED.keys())
def test_each_private_address_class_is_refused_on_a_space(on_space, ip):
    with pytest.raises(netguard.AddressRefused) as caught:
        netguard.check_url(_url(ip), what="The base URL")
    message = str(caught.value)
    assert message.startswith("The base URL: ") and "public Space" in message and "own machine" in message


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


def test_a_hostname_is_checked_by_what_it_resolves_to(on_space):
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


def test_argilla_probe_hook_refuses_at_request_time(on_space):
    client = httpx.Client(event_hooks={"request": [netguard.check_request]})
    with pytest.raises(netguard.AddressRefused):
        client.get("http://127.0.0.1:9/api/v1/me")


def test_cli_generate_is_refused_before_any_call_on_a_space(tmp_path, faulty_server):
    rows = pa.table(
        {"prompt": ["Hoe gaat het?"], "response": ["Goed."], "language": ["Dutch"], "language_code": ["nld"]}
    )
    pq.write_table(rows, tmp_path / "x.parquet")
    env = {**os.environ, "SYSTEM": "spaces", "PYTHONPATH": str(ROOT)}
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
    assert "loopback" in done.stderr and "public Space" in done.stderr, done.stderr
    assert len(faulty_server.requests) == before, "the CLI called the server before refusing"
    assert not (tmp_path / "out").exists(), "the CLI started a run before refusing"
    # the same command runs locally
    env.pop("SYSTEM")
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
