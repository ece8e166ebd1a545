"""An Argilla Space on the Hugging Face Hub in one call: created from Argilla's official template, followed until
it runs. The app's Argilla tab and ``dpo-studio argilla create-space`` both call :func:`create_space` then
:func:`follow`.

This module owns every call about that Space (create it from the template with its secrets, variables and storage;
its runtime; its logs; waking it), through ``huggingface_hub``'s ``HfApi`` with the caller's token, never the
machine's. Who the caller is and where they may write come from :mod:`pipeline.core.hub`.

The template and what it needs, from Argilla's own docs: the "Deploy on Spaces" button of Argilla's Hugging Face
Spaces guide (``docs/_source/getting_started/installation/deployments/huggingface-spaces.md`` in argilla-io/argilla,
``https://huggingface.co/new-space?template=argilla/argilla-template-space``) and the README of the image that
template runs (``argilla-server/docker/argilla-hf-spaces/README.md``): a Docker Space whose start script creates
the owner from ``USERNAME`` (default: the Space's author), ``PASSWORD`` and ``API_KEY``, and keeps its data under
``/data`` when persistent storage is mounted there.

Promises:

- The owner's password and API key are generated here (:func:`new_credentials`) and go to the Hub only as Space
  *secrets*; the username is a public variable. They are never logged, written or put in a message; their
  ``repr`` hides them. Keeping them (in the session only) and showing them once is the caller's job.
- :func:`create_space` never overwrites anything: an existing Argilla Space of that name is reused as it is (its
  secrets are not touched), any other existing Space of that name is refused, and the Hub's "already exists" answer
  is never turned into a write (no ``exist_ok``).
- Every failure raises :class:`SpaceError` whose message says what to do, with a ``kind`` (:data:`KINDS`) that tests
  and callers can check.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from pipeline.core import hub

TEMPLATE_ID: Final = "argilla/argilla-template-space"
TEMPLATE_SDK: Final = "docker"
STORAGE_MOUNT: Final = "/data"
STORAGE_OFFER: Final = (
    "Keep the annotations when the Space restarts: a private storage bucket mounted at /data. It counts against "
    "your account's private storage (100 GB free, 1 TB with PRO); above that, private storage costs $25 per TB "
    "per month (Hugging Face's storage pricing). Without it, a restart of the Space loses every answer."
)
FOLLOW_TIMEOUT_S: Final = 600.0
POLL_S: Final = 2.0
LOG_LINES: Final = 15
BUILDING_STAGES: Final = ("BUILDING", "RUNNING_BUILDING", "APP_STARTING", "RUNNING_APP_STARTING", "NO_APP_FILE")
ERROR_STAGES: Final = ("BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR")
ASLEEP_STAGES: Final = ("SLEEPING", "PAUSED", "STOPPED")
_SPACE_PAGE: Final = re.compile(r"^(https?://(www\.)?(huggingface\.co|hf\.co)/)?spaces/")
KINDS: Final = ("invalid", "taken", "no_access", "scope", "payment", "build", "sleeping", "timeout", "hub")


class SpaceError(Exception):
    """A problem with the Argilla Space that the user can fix; the message says how (never a secret)."""

    def __init__(self, kind: str, message: str, logs: list[str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.logs = list(logs or [])


@dataclass(frozen=True)
class OwnerCredentials:
    """The Argilla owner of a new Space. Only ``username`` shows in a ``repr``."""

    username: str
    password: str = field(repr=False)
    api_key: str = field(repr=False)


def new_credentials(username: str) -> OwnerCredentials:
    """A fresh owner password and API key for ``username`` (Argilla wants at least 8 characters for both)."""
    return OwnerCredentials(username=username, password=secrets.token_urlsafe(18), api_key=secrets.token_urlsafe(32))


def default_space_id(username: str | None) -> str:
    """``<user>/argilla``; just ``argilla`` when the user is unknown."""
    return f"{username}/argilla" if username else "argilla"


@dataclass
class SpaceStatus:
    """Where the Space stands: its stage on the Hub, where Argilla answers once it runs, and for how long we waited."""

    space_id: str
    stage: str
    url: str  # the Space's direct URL, where Argilla answers (https://owner-name.hf.space)
    page: str  # the Space's page on the Hub
    elapsed_s: float = 0.0
    reused: bool = False  # the Space existed before this call (nothing in it was changed)
    storage: bool = False

    @property
    def running(self) -> bool:
        return self.stage == "RUNNING"

    @property
    def building(self) -> bool:
        return self.stage in BUILDING_STAGES

    def summary(self) -> str:
        if self.running:
            return f"Space {self.space_id} is running ({self.elapsed_s:.0f} s): Argilla answers at {self.url}."
        if self.building:
            return (
                f"Space {self.space_id} is building… {self.elapsed_s:.0f} s so far (a new Argilla Space takes 2-5 min)."
            )
        return f"Space {self.space_id} is {self.stage.lower().replace('_', ' ')} ({self.elapsed_s:.0f} s)."


def _api() -> Any:
    from huggingface_hub import HfApi

    return HfApi(library_name="dpo-studio")


def _status_code(exc: BaseException) -> int | None:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return exc.response.status_code
    return None


def _page(space_id: str) -> str:
    return f"{hub.endpoint()}/spaces/{space_id}"


def _direct_url(space_id: str, info: Any = None) -> str:
    host = getattr(info, "host", None)
    if host:
        return str(host).rstrip("/") if "://" in str(host) else f"https://{host}"
    sub = "-".join(space_id.lower().replace("_", "-").replace(".", "-").split("/"))
    return f"https://{sub}.hf.space"


def _hub_error(exc: BaseException, space_id: str, action: str) -> SpaceError:
    """A ``SpaceError`` for a failed Hub call (connection problems and unknown errors included)."""
    if isinstance(exc, SpaceError):
        return exc
    if isinstance(exc, hub.HubError):
        return SpaceError("hub", str(exc))
    status = _status_code(exc)
    if status == 401:
        return SpaceError("scope", f"The Hub refused your sign-in to {action}: sign in again.")
    if status is not None and status >= 500:
        return SpaceError(
            "hub",
            f"The Hugging Face Hub had a problem (HTTP {status}) while trying to {action}; try again in a few minutes.",
        )
    if status is None:
        return SpaceError(
            "hub", f"Could not reach the Hugging Face Hub to {action}: check your connection and try again."
        )
    return SpaceError("hub", f"The Hub answered HTTP {status} while trying to {action} ('{space_id}').")


def _space_info(api: Any, token: str, space_id: str) -> Any | None:
    """The Space's info, or None when it does not exist (or this token cannot see it)."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        return api.space_info(space_id, token=token)
    except RepositoryNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001
        raise _hub_error(exc, space_id, "look the Space up") from None


def _is_argilla(info: Any) -> bool:
    tags = {str(t).lower() for t in (getattr(info, "tags", None) or [])}
    card = getattr(info, "card_data", None)
    card_tags = {str(t).lower() for t in ((card.get("tags") if card is not None else None) or [])}
    return "argilla" in tags | card_tags


def _check_user(token: str, owner: str) -> hub.HubUser:
    if not token:
        raise SpaceError("scope", "Sign in with Hugging Face first: the Space is created with your account.")
    try:
        user = hub.whoami(token)
    except hub.HubError as exc:
        raise SpaceError("scope" if "sign in again" in str(exc) else "hub", str(exc)) from None
    if owner not in user.namespaces:
        allowed = ", ".join(f"'{n}/…'" for n in user.namespaces)
        raise SpaceError(
            "no_access",
            f"You have no write access to '{owner}', so no Space can be created there. Use your own namespace or an "
            f"organisation where you can write ({allowed}), or ask an admin of '{owner}' for the write role.",
        )
    if not user.can_write:
        raise SpaceError(
            "scope",
            "Your sign-in does not allow creating Spaces: sign out, sign in again and accept the 'manage repos' "
            "and 'write repos' permissions (with the CLI: a token with write access).",
        )
    return user


def create_space(token: str, space_id: str, credentials: OwnerCredentials, *, storage: bool = False) -> SpaceStatus:
    """Create ``space_id`` from Argilla's template with the owner's secrets (and a storage bucket if ``storage``),
    or reuse it when an Argilla Space of that name exists. Returns its first status; raises :class:`SpaceError`."""
    space_id = _SPACE_PAGE.sub("", (space_id or "").strip())  # a pasted Space page or "spaces/owner/name"
    try:
        space_id = hub.validate_repo_id(space_id)
    except hub.HubError as exc:
        raise SpaceError("invalid", str(exc).replace("repo name", "Space name")) from None
    owner = space_id.split("/")[0]
    _check_user(token, owner)
    api = _api()
    existing = _space_info(api, token, space_id)
    if existing is not None:
        if not _is_argilla(existing):
            raise SpaceError(
                "taken",
                f"The name '{space_id}' is taken by a Space that is not an Argilla Space. Nothing was changed: "
                "choose another name.",
            )
        return status(token, space_id, reused=True)
    volumes = None
    if storage:
        from huggingface_hub import Volume

        bucket = f"{space_id}-data"
        try:
            api.create_bucket(bucket, private=True, exist_ok=True, token=token)
        except Exception as exc:  # noqa: BLE001
            raise _hub_error(exc, space_id, "create the storage bucket") from None
        volumes = [Volume(type="bucket", source=bucket, mount_path=STORAGE_MOUNT)]
    try:
        api.create_repo(
            space_id,
            repo_type="space",
            space_template=TEMPLATE_ID,
            private=False,  # DPO Studio reaches Argilla without a Hugging Face token (Argilla has its own sign-in)
            space_secrets=[
                {"key": "PASSWORD", "value": credentials.password, "description": "Argilla owner's password"},
                {"key": "API_KEY", "value": credentials.api_key, "description": "Argilla owner's API key"},
            ],
            space_variables=[{"key": "USERNAME", "value": credentials.username, "description": "Argilla owner"}],
            space_volumes=volumes,
            token=token,
        )
    except ValueError as exc:  # the template is not in the Hub's list
        raise SpaceError("hub", f"The Hub does not offer Argilla's Space template ({TEMPLATE_ID}): {exc}") from None
    except Exception as exc:  # noqa: BLE001
        code = _status_code(exc)
        if code == 409:
            raise SpaceError(
                "taken",
                f"The name '{space_id}' is already taken on the Hub (perhaps with other capital letters). Nothing was "
                "changed: choose another name.",
            ) from None
        if code == 403:
            raise SpaceError(
                "scope",
                f"The Hub refused to create '{space_id}' with your sign-in: it lacks the 'manage repos' permission. "
                "Sign out, sign in again and accept it (with the CLI: a token with write access).",
            ) from None
        if code == 402:
            raise SpaceError(
                "payment",
                f"The Hub needs a payment method on '{owner}' to run a Docker Space such as Argilla: add one in your "
                "billing settings (or create the Space in an organisation that has one), then try again.",
            ) from None
        raise _hub_error(exc, space_id, "create the Space") from None
    return status(token, space_id, storage=storage)


def status(
    token: str, space_id: str, *, started: float | None = None, reused: bool = False, storage: bool = False
) -> SpaceStatus:
    """The Space's stage now (``elapsed_s`` counted from ``started``, a ``time.monotonic()`` value)."""
    api = _api()
    try:
        runtime = api.get_space_runtime(space_id, token=token)
        info = api.space_info(space_id, token=token)
    except Exception as exc:  # noqa: BLE001
        raise _hub_error(exc, space_id, "read the Space's state") from None
    volumes = getattr(runtime, "volumes", None) or []
    return SpaceStatus(
        space_id=space_id,
        stage=str(getattr(runtime.stage, "value", runtime.stage)),
        url=_direct_url(space_id, info),
        page=_page(space_id),
        elapsed_s=0.0 if started is None else time.monotonic() - started,
        reused=reused,
        storage=storage or any(getattr(v, "mount_path", "") == STORAGE_MOUNT for v in volumes),
    )


def last_logs(token: str, space_id: str, *, build: bool, n: int = LOG_LINES) -> list[str]:
    """The last ``n`` lines of the Space's build (or run) logs; [] when they cannot be read."""
    try:
        lines = [str(line).rstrip("\n") for line in _api().fetch_space_logs(space_id, build=build, token=token)]
    except Exception:  # noqa: BLE001 - logs are a help, not a requirement
        return []
    return [line for line in lines if line.strip()][-n:]


def watch(
    token: str,
    space_id: str,
    *,
    timeout_s: float = FOLLOW_TIMEOUT_S,
    poll_s: float = POLL_S,
    reused: bool = False,
) -> Iterator[SpaceStatus]:
    """Yield the Space's status every ``poll_s`` seconds until it runs (the last one yielded is ``RUNNING``).
    A sleeping Space is woken once.

    Raises :class:`SpaceError` with the last log lines on a build or runtime error, ``"sleeping"`` when it stays
    asleep, ``"timeout"`` when it is still building after ``timeout_s``."""
    started = time.monotonic()
    woken = False
    while True:
        now = status(token, space_id, started=started, reused=reused)
        yield now
        if now.running:
            return
        if now.stage in ERROR_STAGES:
            build = now.stage != "RUNTIME_ERROR"
            logs = last_logs(token, space_id, build=build)
            what = "failed to build" if build else "crashed while starting"
            raise SpaceError(
                "build",
                f"The Space {space_id} {what} ({now.stage}). Its last log lines are below. Open {now.page} and "
                "click 'Factory rebuild' in its settings; if it fails again, check that the Space's hardware and "
                "secrets were not changed, or delete it and create it again.",
                logs,
            )
        timed_out = now.elapsed_s >= timeout_s
        if now.stage in ASLEEP_STAGES:
            if not woken:
                woken = True
                try:
                    _api().restart_space(space_id, token=token)
                except Exception:  # noqa: BLE001 - waking is best effort; the deadline decides
                    pass
            elif timed_out:
                raise SpaceError(
                    "sleeping",
                    f"The Space {space_id} is {now.stage.lower()} and did not wake up within {timeout_s:.0f} s. Open "
                    f"{now.page} and click 'Restart this Space' (a paused Space must be resumed by its owner), wait "
                    "until it shows 'Running', then click again.",
                )
        elif timed_out:
            raise SpaceError(
                "timeout",
                f"The Space {space_id} is still {now.stage.lower()} after {timeout_s:.0f} s. Nothing is lost: click "
                f"again later to go on following it, or open {now.page} to see its logs.",
            )
        time.sleep(poll_s)


def follow(
    token: str,
    space_id: str,
    *,
    timeout_s: float = FOLLOW_TIMEOUT_S,
    poll_s: float = POLL_S,
    on_update: Callable[[SpaceStatus], None] | None = None,
    reused: bool = False,
) -> SpaceStatus:
    """:func:`watch` to the end: the ``RUNNING`` status, ``on_update`` called with each one on the way."""
    last = None
    for last in watch(token, space_id, timeout_s=timeout_s, poll_s=poll_s, reused=reused):
        if on_update is not None:
            on_update(last)
    assert last is not None  # watch yields at least once
    return last
