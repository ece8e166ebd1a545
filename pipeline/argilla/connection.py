"""Argilla connections, in bounded time: where the URL and key come from, the check, the client, workspaces.

:func:`connect` takes the URL and API key of this call (a per-session override typed by the user) or falls back to
the Space's secrets ``ARGILLA_API_URL`` / ``ARGILLA_API_KEY``. It first probes ``GET /api/v1/me`` with short
time-outs, so a wrong URL, a wrong key or an unreachable server fails within about :data:`PROBE_DEADLINE` seconds
with an :class:`ArgillaIOError` whose message says what to do. The key is never logged, stored or put in a message.
(The SDK keeps the last client it built as a process-wide default; every call here passes its own client
explicitly, so one session never works with another session's client.)

This module owns :class:`ArgillaIOError` (a problem the user can fix) and the look-ups of a workspace and a dataset
by name that sending and pulling share.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from pipeline.core import netguard

PROBE_DEADLINE: Final = 10.0  # seconds: the longest a connection check may take
CONNECT_TIMEOUT: Final = 3.0
PROBE_READ_TIMEOUT: Final = 5.0
READ_TIMEOUT: Final = 60.0  # bulk writes to a busy Space can be slow
ENV_URL: Final = "ARGILLA_API_URL"
ENV_KEY: Final = "ARGILLA_API_KEY"


class ArgillaIOError(Exception):
    """A problem with Argilla that the user can fix; the message says how (and never contains the key)."""


def env_url() -> str:
    """The Space's ``ARGILLA_API_URL`` secret/variable, or ""."""
    return os.environ.get(ENV_URL, "").strip()


def env_key_set() -> bool:
    """Whether the Space has an ``ARGILLA_API_KEY`` secret (its value is never returned)."""
    return bool(os.environ.get(ENV_KEY, "").strip())


def normalize_url(url: str) -> str:
    """The API base URL from what people paste: adds the scheme, drops trailing ``/``, ``/api``, ``/datasets``...

    A Hugging Face Space *page* (``https://huggingface.co/spaces/OWNER/NAME``) becomes the Space's direct URL
    ``https://OWNER-NAME.hf.space``, which is where Argilla answers.
    """
    url = (url or "").strip()
    if not url:
        return ""
    if "://" not in url:
        host = url.split("/")[0].split(":")[0]
        url = ("http://" if host in ("localhost", "127.0.0.1", "0.0.0.0") else "https://") + url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # e.g. brackets that are not an IPv6 address
        raise ArgillaIOError(f"{url!r} is not a URL. Type your Argilla Space's URL, like https://owner-name.hf.space.")
    space = re.match(r"^/spaces/([^/]+)/([^/]+)", parts.path)
    if host in ("huggingface.co", "www.huggingface.co", "hf.co") and space:
        sub = re.sub(r"[^a-z0-9]+", "-", f"{space.group(1)}-{space.group(2)}".lower()).strip("-")
        return f"https://{sub}.hf.space"
    path = parts.path.rstrip("/")
    path = re.sub(r"/(api(/v1)?|datasets?|dataset/.*|sign-in|login)$", "", path)
    return f"{parts.scheme}://{parts.netloc}{path}"


def resolve_credentials(url: str | None = None, api_key: str | None = None) -> tuple[str, str]:
    """``(url, key)`` for this call: the per-session override when given, else the Space's secrets."""
    final_url = normalize_url(url or "") or normalize_url(env_url())
    final_key = (api_key or "").strip() or os.environ.get(ENV_KEY, "").strip()
    where = "secret of this Space" if netguard.on_space() else "environment variable before starting the app"
    if not final_url:
        raise ArgillaIOError(
            "No Argilla URL: type your Argilla Space's URL (like https://owner-name.hf.space), or set the "
            f"{ENV_URL} {where}."
        )
    if urlsplit(final_url).scheme not in ("http", "https") or not urlsplit(final_url).hostname:
        raise ArgillaIOError("The Argilla URL must start with https:// (or http:// for a local server).")
    if not final_key:
        raise ArgillaIOError(
            "No Argilla API key: paste it (in Argilla: your avatar → My settings → API key), or set the "
            f"{ENV_KEY} {where}."
        )
    return final_url, final_key


@dataclass
class Connection:
    """An authenticated Argilla client for one call (do not keep it in session state: it holds the key)."""

    url: str
    username: str
    role: str
    client: Any = field(repr=False)

    @property
    def can_see_all_answers(self) -> bool:
        return self.role in ("owner", "admin")

    def close(self) -> None:
        try:
            self.client.http_client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _probe(url: str, api_key: str) -> dict:
    """``GET /api/v1/me`` with short time-outs, in a thread with a hard deadline (DNS is not covered by httpx)."""
    import httpx

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with httpx.Client(
                base_url=url,
                headers={"X-Argilla-Api-Key": api_key},
                timeout=httpx.Timeout(PROBE_READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                follow_redirects=False,
                transport=netguard.httpx_transport(),  # public app: connects only to a checked address
                event_hooks={"request": [netguard.check_request]},  # (and checks the name behind a proxy)
            ) as http:
                result["response"] = http.get("/api/v1/me")
        except Exception as exc:  # noqa: BLE001 - classified below
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name="argilla-probe")
    thread.start()
    thread.join(PROBE_DEADLINE)
    where = f"Argilla at {url}"
    if thread.is_alive():
        raise ArgillaIOError(
            f"{where} did not answer within {PROBE_DEADLINE:.0f} s. Check the URL; a sleeping Space needs a minute "
            "to wake up (open it in your browser), then try again."
        )
    if "error" in result:
        exc = result["error"]
        if isinstance(exc, netguard.AddressRefused):
            raise ArgillaIOError(exc.message)
        if isinstance(exc, httpx.TimeoutException):
            what = "did not answer in time"
        elif isinstance(exc, httpx.ConnectError):
            what = "could not be reached"
        else:
            what = f"could not be reached ({type(exc).__name__})"
        raise ArgillaIOError(
            f"{where} {what}. Check the URL (your Argilla Space's direct URL, like https://owner-name.hf.space) and "
            "that the Space is running."
        )
    response = result["response"]
    if response.status_code == 401:
        raise ArgillaIOError(
            f"{where} refused the API key. Copy it again from Argilla (your avatar → My settings → API key)."
        )
    if response.status_code in (301, 302, 303, 307, 308, 403, 404) and (
        "huggingface.co" in response.headers.get("location", "") or (urlsplit(url).hostname or "").endswith(".hf.space")
    ):
        raise ArgillaIOError(
            f"{where} answered HTTP {response.status_code}: the Space does not exist, is not an Argilla Space, or "
            "is private. Check the URL; make a private Argilla Space public (Argilla has its own sign-in and API "
            "keys), since DPO Studio never sends your Hugging Face token to a Space."
        )
    try:
        body = response.json() if response.status_code == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or "username" not in body:
        raise ArgillaIOError(
            f"The server at {url} answered (HTTP {response.status_code}) but is not an Argilla 2.x server. Use the "
            "URL where Argilla itself opens, like https://owner-name.hf.space (not the Space's page on "
            "huggingface.co)."
        )
    return body


def connect(url: str | None = None, api_key: str | None = None) -> Connection:
    """Check the credentials and return a :class:`Connection`; raises :class:`ArgillaIOError` in bounded time.

    Only the Argilla key is sent (never a Hugging Face token: a ``*.hf.space`` host may be anyone's Space)."""
    final_url, key = resolve_credentials(url, api_key)
    try:  # a public app: never a private address (pipeline.core.netguard); checked again on every request
        netguard.check_url(final_url, what=f"The Argilla URL {final_url}")
    except netguard.AddressRefused as exc:
        raise ArgillaIOError(exc.message) from None
    me = _probe(final_url, key)
    import argilla as rg
    import httpx

    try:
        client = rg.Argilla(
            api_url=final_url,
            api_key=key,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            retries=1,
            event_hooks={"request": [netguard.check_request]},
            # public app: every SDK request goes through a transport that connects only to a checked address
            **({"mounts": netguard.httpx_mounts(retries=1)} if netguard.active() else {}),
        )
    except Exception as exc:  # noqa: BLE001 - the probe passed, so this is rare
        raise ArgillaIOError(f"Could not open a session with Argilla at {final_url}: {describe(exc)}") from None
    role = str(me.get("role", "")).split(".")[-1]
    return Connection(url=final_url, username=str(me.get("username", "")), role=role, client=client)


def describe(exc: BaseException) -> str:
    """A short, key-free description of an SDK/HTTP error."""
    text = str(exc).replace("\n", " ")
    return (text[:300] + "…") if len(text) > 300 else text


def list_workspaces(conn: Connection) -> list[str]:
    """Names of the workspaces the user belongs to."""
    try:
        return sorted(ws.name for ws in conn.client.workspaces.list())
    except Exception as exc:  # noqa: BLE001
        raise ArgillaIOError(f"Could not list Argilla workspaces: {describe(exc)}") from None


def find_workspace(conn: Connection, name: str | None) -> Any:
    try:
        spaces = conn.client.workspaces.list()
    except Exception as exc:  # noqa: BLE001
        raise ArgillaIOError(f"Could not list Argilla workspaces: {describe(exc)}") from None
    names = sorted(ws.name for ws in spaces)
    if not spaces:
        raise ArgillaIOError(
            f"User {conn.username!r} belongs to no workspace. An owner can create one in Argilla (Settings → "
            "Workspaces) and add you to it."
        )
    if not name:
        if len(spaces) == 1:
            return spaces[0]
        raise ArgillaIOError(f"Choose a workspace: {', '.join(names)}.")
    for ws in spaces:
        if ws.name == name:
            return ws
    raise ArgillaIOError(
        f"Workspace {name!r} not found for user {conn.username!r}. Available: {', '.join(names)}. Pick one of "
        "these, or ask an owner to create it / add you to it."
    )


def find_dataset(conn: Connection, name: str, ws: Any) -> Any | None:
    try:
        for dataset in ws.datasets:  # (``client.datasets(name)`` warns when it finds nothing)
            if dataset.name == name:
                return dataset.get()
        return None
    except Exception as exc:  # noqa: BLE001
        raise ArgillaIOError(f"Could not read dataset {name!r}: {describe(exc)}") from None


def dataset_url(conn: Connection, dataset: Any) -> str:
    """Where annotators open the dataset in Argilla's UI."""
    return f"{conn.url}/dataset/{dataset.id}/annotation-mode"
