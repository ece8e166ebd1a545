"""The Hugging Face Hub: the ONLY module that talks to it (whoami, repos, pushing and loading datasets, cards).

Every function takes the caller's token as an argument (the signed-in user's OAuth token in the app, ``HF_TOKEN``
or the stored token in the CLI); tokens are never stored, logged or put in messages. Failures raise
:class:`HubError` with a message for the user that says what to do; :class:`HubUnreachable` (a ``HubError``)
means the Hub could not be reached at all, so callers can fall back (e.g. to the demo data).

The Hub's address is ``HF_ENDPOINT`` (read by ``huggingface_hub`` at import), so tests point the real clients at a
local fake Hub.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

T = TypeVar("T")

__all__ = [
    "HubError",
    "HubUnreachable",
    "HubUser",
    "whoami",
    "local_token",
    "local_login_check",
    "validate_repo_id",
    "check_writable",
    "repo_exists",
    "push_dataset",
    "upload_files",
    "download_file",
    "list_files",
    "load_dataset_table",
    "check_dataset_access",
    "render_card",
    "dataset_url",
    "SIGN_IN_TO_PUSH",
]

SIGN_IN_TO_PUSH = "Pushing to the Hub needs you to be signed in with Hugging Face (or HF_TOKEN set for the CLI)."
_WRITE_ROLES = ("admin", "write", "contributor")
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_SPLIT_RE = re.compile(r"^\w+(\.\w+)*$")


class HubError(Exception):
    """Something the user can fix; ``str(err)`` says what happened and what to do."""


class HubUnreachable(HubError):
    """The Hub could not be reached (no network, DNS, time-out, 5xx)."""


@dataclass(frozen=True)
class HubUser:
    """Who a token belongs to. ``orgs`` lists only organisations where the user may create/write repos."""

    name: str
    orgs: list[str] = field(default_factory=list)
    fullname: str = ""
    can_write: bool = True  # False for a read-only token

    @property
    def namespaces(self) -> list[str]:
        return [self.name, *self.orgs]


# --- plumbing -----------------------------------------------------------------------------------------------------
def _api():
    from huggingface_hub import HfApi

    return HfApi(library_name="dpo-studio")


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def dataset_url(repo_id: str) -> str:
    """The dataset's page on the Hub."""
    return f"{endpoint()}/datasets/{repo_id}"


def _is_connection_error(exc: BaseException) -> bool:
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (httpx2.TransportError, OfflineModeIsEnabled, ConnectionError, TimeoutError)):
            return True
        if isinstance(e, HfHubHTTPError) and e.response is not None and e.response.status_code >= 500:
            return True
        e = e.__cause__ or e.__context__
    return False


def _server_status(exc: BaseException) -> int | None:
    """The 5xx status in ``exc``'s chain, if the failure was the Hub's."""
    e: BaseException | None = exc
    for _ in range(10):
        if e is None:
            return None
        status = _status(e)
        if status is not None and status >= 500:
            return status
        e = e.__cause__ or e.__context__
    return None


def _status(exc: BaseException) -> int | None:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return exc.response.status_code
    return None


def _explain(exc: BaseException, *, repo_id: str, token: str | None, action: str) -> HubError:
    """Turn a client exception into a HubError that tells the user what to do (never mentions the token)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalTokenNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, HubError):
        return exc
    if _is_connection_error(exc):
        status = _server_status(exc)
        if status is not None:
            return HubUnreachable(
                f"The Hugging Face Hub had a problem (HTTP {status}) while trying to {action}. Nothing was changed "
                "by this step; try again in a few minutes."
            )
        return HubUnreachable(
            f"Could not reach the Hugging Face Hub ({endpoint()}) to {action}. "
            "Check your network connection and try again."
        )
    if isinstance(exc, HFValidationError):
        return HubError(f"'{repo_id}' is not a valid Hub id: use the form 'owner/name' (letters, digits, - _ .).")
    if isinstance(exc, LocalTokenNotFoundError):
        return HubError(f"To {action} you need to be signed in. {SIGN_IN_TO_PUSH}")
    if isinstance(exc, GatedRepoError):
        if token is None:
            return HubError(
                f"'{repo_id}' is a gated dataset: sign in with a Hugging Face account that has access to it. "
                f"Request access at {dataset_url(repo_id)} first if you have not."
            )
        return HubError(
            f"'{repo_id}' is a gated dataset and your account has no access yet: request access at "
            f"{dataset_url(repo_id)}, wait until it is granted, then load it again."
        )
    if isinstance(exc, RevisionNotFoundError):
        return HubError(f"'{repo_id}' has no such revision/branch: check the name.")
    if isinstance(exc, RepositoryNotFoundError):
        if token is None:
            return HubError(
                f"Dataset '{repo_id}' was not found. Check the id (owner/name, as in its URL); if it is private, "
                "sign in with an account that can see it."
            )
        return HubError(
            f"Dataset '{repo_id}' was not found, or your account cannot see it. Check the id (owner/name, as in "
            "its URL)."
        )
    status = _status(exc)
    if status == 401:
        return HubError(f"The Hub refused the token to {action}: sign in again (or set a valid HF_TOKEN).")
    if status == 403:
        return HubError(
            f"You are not allowed to {action} ('{repo_id}'): pick a repo in your own namespace or an organisation "
            "where you have write access, and make sure your token can write."
        )
    if status == 409:
        return HubError(f"'{repo_id}' already exists: pick a new name, or tick overwrite to replace its contents.")
    return HubError(f"The Hub returned an error while trying to {action} ('{repo_id}'): {_short(exc)}")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _call(fn: Callable[[], T], *, repo_id: str, token: str | None, action: str) -> T:
    try:
        return fn()
    except Exception as exc:
        raise _explain(exc, repo_id=repo_id, token=token, action=action) from exc


def owners(token: str | None, user: str | None = None) -> list[str]:
    """The namespaces ``token`` can push to (the user's name, then their organisations), for "push to" choices.
    When the Hub cannot say (no token, a refused token, the Hub down), the signed-in ``user``'s own name if known,
    else nothing: a choice list never fails."""
    if token:
        try:
            return whoami(token).namespaces
        except HubError:
            pass
    return [user] if user else []


def local_token() -> str | None:
    """The token of this machine (``HF_TOKEN`` or the one saved by ``hf auth login``), for the CLI only.

    The app never uses it: there every call gets the signed-in user's OAuth token."""
    from huggingface_hub import get_token

    return get_token()


def local_login_check(timeout_s: float = 8.0) -> tuple[bool, str]:
    """Whether Gradio's local (mocked) sign-in can work here, and if not, one line saying why.

    Outside a Space Gradio signs you in as the owner of this machine's token, asking the Hub once at start-up who
    that is. Without a token, or without a Hub that answers within ``timeout_s``, the app starts without sign-in.
    """
    import concurrent.futures

    token = local_token()
    if not token:
        return False, "Run it as a Hugging Face Space, or set HF_TOKEN locally, to sign in."
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(whoami, token).result(timeout=timeout_s)
    except (HubError, concurrent.futures.TimeoutError):
        return (
            False,
            "The Hub did not recognise this machine's token (or could not be reached), so local sign-in is off.",
        )
    finally:
        pool.shutdown(wait=False)
    return True, ""


# --- identity and names -------------------------------------------------------------------------------------------
def whoami(token: str) -> HubUser:
    """Who ``token`` belongs to, and the organisations where they can write."""
    if not token:
        raise HubError(SIGN_IN_TO_PUSH)
    info = _call(lambda: _api().whoami(token=token), repo_id="", token=token, action="check who you are")
    orgs = [o["name"] for o in info.get("orgs") or [] if (o.get("roleInOrg") or "write") in _WRITE_ROLES]
    role = (((info.get("auth") or {}).get("accessToken")) or {}).get("role")
    return HubUser(name=info["name"], orgs=orgs, fullname=info.get("fullname") or "", can_write=role != "read")


def validate_repo_id(repo_id: str) -> str:
    """Return the cleaned ``owner/name`` or raise HubError saying what is wrong. Makes no Hub call."""
    repo_id = (repo_id or "").strip().strip("/")
    for prefix in ("https://huggingface.co/datasets/", "datasets/"):
        if repo_id.startswith(prefix):
            repo_id = repo_id[len(prefix) :]
    parts = repo_id.split("/")
    if not repo_id or len(parts) != 2 or not all(parts):
        raise HubError(
            f"'{repo_id}' is not a valid repo name: use 'owner/name', e.g. 'your-username/aya-nld'."
            if repo_id
            else "Enter a repo name like 'your-username/aya-nld'."
        )
    owner, name = parts
    for part, what in ((owner, "owner"), (name, "name")):
        if not _NAME_RE.match(part) or "--" in part or ".." in part:
            raise HubError(
                f"'{repo_id}' is not a valid repo name: the {what} '{part}' may only use letters, digits, '-', '_' "
                "and '.', must start and end with a letter or digit, and may not contain '--' or '..'."
            )
    if len(name) > 96:
        raise HubError(f"'{repo_id}' is not a valid repo name: the name is longer than 96 characters.")
    if name.endswith(".git"):
        raise HubError(f"'{repo_id}' is not a valid repo name: it may not end with '.git'.")
    return repo_id


def check_writable(repo_id: str, token: str | None) -> HubUser:
    """Raise HubError unless ``token`` may create/write ``repo_id`` (its namespace is the user or a writable org).

    Call it before spending any work. Returns the user for convenience.
    """
    repo_id = validate_repo_id(repo_id)
    if not token:
        raise HubError(SIGN_IN_TO_PUSH)
    user = whoami(token)
    if not user.can_write:
        raise HubError("Your token is read-only: sign in again granting write access (or use a write token).")
    owner = repo_id.split("/")[0]
    if owner not in user.namespaces:
        allowed = ", ".join(f"'{n}/…'" for n in user.namespaces)
        raise HubError(
            f"You cannot write to '{owner}': push to your own namespace or an organisation where you can write "
            f"({allowed})."
        )
    return user


def repo_exists(repo_id: str, token: str | None) -> bool:
    """Whether the dataset repo exists (and is visible with ``token``)."""
    repo_id = validate_repo_id(repo_id)
    return _call(
        lambda: _api().repo_exists(repo_id, repo_type="dataset", token=token or False),
        repo_id=repo_id,
        token=token,
        action="check whether the dataset exists",
    )


# --- cards --------------------------------------------------------------------------------------------------------
def render_card(metadata: dict, body: str) -> str:
    """A dataset card: YAML front matter from ``metadata`` (via huggingface_hub's DatasetCardData) + markdown body."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(**{k: v for k, v in metadata.items() if v is not None})
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body.strip()}\n")
    return str(card)


def _with_configs(card: str, splits: list[str]) -> str:
    """Declare the splits in the card (``configs``) so any split name loads with ``datasets.load_dataset``."""
    import yaml
    from huggingface_hub import DatasetCard

    try:
        parsed = DatasetCard(card) if card.lstrip().startswith("---") else DatasetCard(f"---\n{{}}\n---\n{card}")
    except (yaml.YAMLError, ValueError) as e:
        raise HubError(f"The dataset card's metadata is not valid YAML: {_short(e)}") from e
    meta = parsed.data.to_dict()
    if not meta.get("configs"):
        meta["configs"] = [
            {"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}
        ]
    return render_card(meta, parsed.text)


# --- writing ------------------------------------------------------------------------------------------------------
def _parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def push_dataset(
    tables: pa.Table | dict[str, pa.Table],
    repo_id: str,
    token: str | None,
    *,
    private: bool,
    card: str,
    overwrite: bool = False,
    extra_files: dict[str, str | bytes] | None = None,
    commit_message: str = "Upload dataset with DPO Studio",
) -> str:
    """Push one table (split ``train``) or ``{split: table}`` as Parquet with ``card`` as README.md, in ONE commit.

    Refuses (HubError) before any upload when the name is invalid, you are not signed in or cannot write there,
    or the repo exists and ``overwrite`` is False. With ``overwrite`` the repo's old files are replaced in that
    same commit. If the commit fails on a repo created here, the empty repo is deleted again. Returns the URL.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    repo_id = validate_repo_id(repo_id)
    splits = tables if isinstance(tables, dict) else {"train": tables}
    if not splits:
        raise HubError("There is nothing to push.")
    for name in splits:
        if not _SPLIT_RE.match(name):
            raise HubError(f"'{name}' is not a valid split name (letters, digits and _ only).")
    check_writable(repo_id, token)
    api = _api()
    exists = repo_exists(repo_id, token)
    if exists and not overwrite:
        raise HubError(
            f"'{repo_id}' already exists on the Hub: pick a new name, or tick overwrite to replace its contents."
        )
    files: dict[str, bytes] = {f"data/{s}-00000-of-00001.parquet": _parquet_bytes(t) for s, t in splits.items()}
    files["README.md"] = _with_configs(card, list(splits)).encode("utf-8")
    for path, content in (extra_files or {}).items():
        files[path] = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    ops: list[Any] = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=b) for p, b in files.items()]

    created = False
    if exists:
        old = _call(
            lambda: api.list_repo_files(repo_id, repo_type="dataset", token=token),
            repo_id=repo_id,
            token=token,
            action="list the existing files",
        )
        ops += [CommitOperationDelete(path_in_repo=p) for p in old if p not in files and p != ".gitattributes"]
        _call(
            lambda: api.update_repo_settings(repo_id, repo_type="dataset", private=private, token=token),
            repo_id=repo_id,
            token=token,
            action="set the dataset's visibility",
        )
    else:
        _call(
            lambda: api.create_repo(repo_id, repo_type="dataset", private=private, token=token),
            repo_id=repo_id,
            token=token,
            action="create the dataset",
        )
        created = True
    try:
        _call(
            lambda: api.create_commit(repo_id, ops, commit_message=commit_message, repo_type="dataset", token=token),
            repo_id=repo_id,
            token=token,
            action="upload the dataset",
        )
    except HubError:
        if created:  # leave nothing half-way
            try:
                api.delete_repo(repo_id, repo_type="dataset", token=token, missing_ok=True)
            except Exception:  # noqa: BLE001 - best effort; the original error is what the user needs
                pass
        raise
    return dataset_url(repo_id)


def upload_files(
    repo_id: str, files: dict[str, str | bytes], token: str | None, *, commit_message: str = "Update with DPO Studio"
) -> str:
    """Add or replace ``files`` (path → content) in an EXISTING dataset repo you can write, in one commit."""
    from huggingface_hub import CommitOperationAdd

    repo_id = validate_repo_id(repo_id)
    check_writable(repo_id, token)
    ops = [
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=c.encode("utf-8") if isinstance(c, str) else bytes(c))
        for p, c in files.items()
    ]
    _call(
        lambda: _api().create_commit(repo_id, ops, commit_message=commit_message, repo_type="dataset", token=token),
        repo_id=repo_id,
        token=token,
        action="upload files",
    )
    return dataset_url(repo_id)


# --- reading ------------------------------------------------------------------------------------------------------
def list_files(repo_id: str, token: str | None) -> list[str]:
    """The file paths of a dataset repo."""
    repo_id = validate_repo_id(repo_id)
    return _call(
        lambda: _api().list_repo_files(repo_id, repo_type="dataset", token=token or False),
        repo_id=repo_id,
        token=token,
        action="list the dataset's files",
    )


def download_file(repo_id: str, path: str, token: str | None) -> bytes:
    """One file of a dataset repo, as bytes."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    repo_id = validate_repo_id(repo_id)

    def fetch() -> bytes:
        local = hf_hub_download(repo_id, path, repo_type="dataset", token=token or False)
        with open(local, "rb") as f:
            return f.read()

    try:
        return fetch()
    except EntryNotFoundError as exc:
        raise HubError(f"'{repo_id}' has no file '{path}'.") from exc
    except Exception as exc:
        raise _explain(exc, repo_id=repo_id, token=token, action="download a file") from exc


def check_dataset_access(dataset_id: str, token: str | None) -> dict:
    """Raise HubError unless ``token`` (or no token) can read the dataset's files. Returns public facts about it:
    ``{"id", "sha", "private", "gated", "license"}`` (``license`` from its card, "" if none)."""
    dataset_id = validate_repo_id(dataset_id)
    api = _api()
    info = _call(
        lambda: api.dataset_info(dataset_id, token=token or False),
        repo_id=dataset_id,
        token=token,
        action=f"load '{dataset_id}'",
    )
    if info.gated or info.private:
        _call(
            lambda: api.auth_check(dataset_id, repo_type="dataset", token=token or False),
            repo_id=dataset_id,
            token=token,
            action=f"load '{dataset_id}'",
        )
    card = info.card_data.to_dict() if info.card_data is not None else {}
    lic = card.get("license") or ""
    return {
        "id": info.id,
        "sha": info.sha,
        "private": bool(info.private),
        "gated": info.gated or False,
        "license": ", ".join(lic) if isinstance(lic, list) else str(lic),
    }


def load_dataset_table(dataset_id: str, split: str, token: str | None, config: str | None = None) -> pa.Table:
    """Load one split of a Hub dataset with ``datasets`` as a pyarrow Table (memory-mapped from the local cache).

    Access is checked with ``token`` first (so a dataset cached for one user is never served to another who cannot
    see it). HubError for not found / gated / needs a token / unknown split or config; HubUnreachable when the Hub
    cannot be reached.
    """
    import datasets

    dataset_id = validate_repo_id(dataset_id)
    check_dataset_access(dataset_id, token)
    split = (split or "train").strip()
    try:
        ds = datasets.load_dataset(dataset_id, name=config or None, split=split, token=token or False)
    except Exception as exc:
        msg = str(exc)
        if isinstance(exc, ValueError) and ("split" in msg.lower() or "Unknown split" in msg):
            raise HubError(f"'{dataset_id}' has no split '{split}'. {_short(exc)}") from exc
        if isinstance(exc, ValueError) and ("config" in msg.lower()):
            raise HubError(f"'{dataset_id}' has no configuration '{config}'. {_short(exc)}") from exc
        raise _explain(exc, repo_id=dataset_id, token=token, action=f"load '{dataset_id}'") from exc
    return ds.with_format("arrow")[:] if len(ds) else ds.data.table.slice(0, 0)
