"""The workflow layer: each step as the app and the CLI both run it, so a step behaves the same in both.

Owns the decisions that sit between a user's request and the step's modules:

- :func:`start_generation`: start or resume a Pipeline run, with its local checkpoint and, optionally, a Hub
  checkpoint in a private dataset of the user's (absent → created; ours → restored when the local one is missing;
  someone else's dataset → refused), and the credentials routed once (:mod:`pipeline.core.credentials`); a judge
  check run before (:mod:`pipeline.judge.check`) goes into the run's metadata, so both cards state its figures.
- :func:`preflight_push`: "is this a valid name, can this token write there, and may we overwrite?", checked
  before any work is spent (the Filter, Pipeline and Export steps, in the tabs and the CLI).
- :func:`require_sign_in`: which models of a run need the user's HF token (each named once).
- :func:`local_checkpoint`: the app's checkpoint file for a data set, settings and owner.

Tokens are passed in and handed on; nothing here stores, logs or writes one. No Gradio.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.core import hub
from pipeline.core.credentials import Credentials, sign_in_refusal
from pipeline.core.errors import RunError
from pipeline.core.schema import JudgeCheck, Provenance, RunMeta
from pipeline.generate import publish
from pipeline.generate.checkpoint import Checkpoint, default_data_dir
from pipeline.generate.executor import start_run
from pipeline.generate.meta import build_raw_meta
from pipeline.generate.runhandle import RunHandle
from pipeline.generate.settings import RunSettings
from pipeline.inference import Backend
from pipeline.judge import check as judgecheck

__all__ = [
    "GenerationRequest",
    "GenerationStart",
    "HUB_CHECKPOINT_MIN_EVERY",
    "local_checkpoint",
    "preflight_push",
    "require_sign_in",
    "model_roles",
    "serverless_models",
    "start_generation",
    "where_models_run",
]

HUB_CHECKPOINT_MIN_EVERY = 10  # rows between two Hub checkpoint pushes, at the least


def serverless_models(settings: RunSettings) -> list[str]:
    """The model ids of ``settings`` that run on serverless inference (the user's token), each once, in order."""
    backends = (*settings.generators, settings.judge)
    return list(dict.fromkeys(b.model for b in backends if b.spec.needs_token))


def require_sign_in(settings: RunSettings, token: str | None, how: str) -> None:
    """Raise :class:`RunError` when a model of ``settings`` runs on serverless inference and there is no token.

    ``how`` says how to get one where the user is ("Sign in with Hugging Face (button at the top)" in the app,
    "Set HF_TOKEN (or run `hf auth login`)" in the CLI).
    """
    message = sign_in_refusal(model_roles(settings), token, how)
    if message:
        raise RunError(message)


def model_roles(settings: RunSettings) -> list[tuple[str, Backend]]:
    """Each model of a run with its role: ("generator", backend) per generator, then ("judge", backend)."""
    return [*(("generator", g) for g in settings.generators), ("judge", settings.judge)]


def where_models_run(settings: RunSettings) -> str:
    """One line per model saying where it runs, e.g. "Generator: m on http://127.0.0.1:8080/v1" (no secrets)."""
    return "\n".join(f"- {role.capitalize()}: {backend.label}" for role, backend in model_roles(settings))


def preflight_push(
    repo_id: str,
    token: str | None,
    *,
    overwrite: bool,
    overwrite_hint: str = "--overwrite",
    ours: Callable[[str], bool] | None = None,
) -> str:
    """Check a push target before any work: a valid ``owner/name``, writable with ``token``, and new unless
    ``overwrite`` (or ``ours(repo_id)`` says it is this user's own earlier result, e.g. a run's Hub checkpoint).

    Returns the normalised repo id. Raises :class:`pipeline.core.hub.HubError` with a message that says what to do
    (``overwrite_hint`` names the flag or box that allows overwriting).
    """
    repo_id = hub.validate_repo_id(repo_id)
    hub.check_writable(repo_id, token)
    if not overwrite and hub.repo_exists(repo_id, token) and not (ours is not None and ours(repo_id)):
        raise hub.HubError(
            f"'{repo_id}' already exists on the Hub: pick a new name, or {overwrite_hint} to replace its contents."
        )
    return repo_id


def local_checkpoint(ids: Sequence[str], language_code: str, settings: RunSettings, owner: str) -> Checkpoint:
    """The local checkpoint of this data (its row ids) + settings + owner: the same choices resume the same file.

    ``owner`` is a signed-in user's name (so a run resumes in any later session) or a per-session random key.
    """
    data = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:10]
    who = re.sub(r"[^A-Za-z0-9_.-]", "_", owner or "local")
    code = re.sub(r"[^a-z0-9]", "", (language_code or "xx").lower()) or "xx"
    return Checkpoint(default_data_dir() / "runs" / who / f"{code}-{data}-{settings.fingerprint()}.jsonl")


@dataclass
class GenerationRequest:
    """What the user asked for: the rows (the filtered table), the settings and where results go."""

    rows: Any  # pyarrow.Table with schema.FILTERED_COLUMNS (or a FilteredSet)
    settings: RunSettings
    checkpoint: Checkpoint
    credentials: Credentials
    source: Provenance | None = None  # provenance of the rows (dataset, config, split, filters); None: unknown
    language: str = ""
    language_code: str = ""
    restart: bool = False  # discard the finished rows of these settings first
    hub_repo: str | None = None  # a private dataset of the user's for Hub checkpoints; None: local only
    checkpoint_every: int = 100
    hedge: bool = True
    judge_check: JudgeCheck | None = None  # a judge check run before (pipeline.judge.check): its figures go on cards
    execute_kwargs: dict = field(default_factory=dict)  # more arguments for pipeline.generate.executor.execute


@dataclass
class GenerationStart:
    """A started run: its handle, the raw dataset's metadata (for cards) and notes for the user."""

    handle: RunHandle
    meta: RunMeta
    notes: list[str]


def start_generation(request: GenerationRequest) -> GenerationStart:
    """Start (or resume) a run in the background and return at once.

    With ``hub_repo`` the run's checkpoint is also pushed, every ``checkpoint_every`` rows and at the end, to that
    private dataset; when the local checkpoint is missing (a restarted Space, another machine) the finished rows
    are first restored from it. A dataset of that name that is not a checkpoint of these settings is refused.
    Raises :class:`RunError` or :class:`pipeline.core.hub.HubError` with a message for the user; nothing has started
    then.
    """
    settings, ckpt, creds = request.settings, request.checkpoint, request.credentials
    meta = build_raw_meta(
        settings, None, source=request.source, language=request.language, language_code=request.language_code
    )
    if request.judge_check is not None:  # the check that scored this run's judge, if it did
        meta = meta.replace(judge_check=judgecheck.for_run(request.judge_check, settings.judge))
    notes: list[str] = []
    on_checkpoint = None
    every = max(HUB_CHECKPOINT_MIN_EVERY, int(request.checkpoint_every or 100))
    if request.hub_repo:
        on_checkpoint, notes = publish.hub_checkpoints(
            meta, request.hub_repo, creds.token, ckpt, restart=request.restart, every=every
        )
    handle = start_run(
        request.rows,
        settings,
        ckpt,
        restart=request.restart,
        credentials=creds,
        on_checkpoint=on_checkpoint,
        checkpoint_every=every,
        hedge=request.hedge,
        source=request.source.to_dict() if request.source else None,
        **request.execute_kwargs,
    )
    return GenerationStart(handle, meta, notes)
