"""The only module that talks to Argilla (SDK ``argilla`` 2.8): connect, send the raw results as a dataset for
human validation, and pull the annotators' answers back.

Connection
    :func:`connect` takes the URL and API key of this call (a per-session override typed by the user) or falls back
    to the Space's secrets ``ARGILLA_API_URL`` / ``ARGILLA_API_KEY``. It first probes ``GET /api/v1/me`` with short
    time-outs, so a wrong URL, a wrong key or an unreachable server fails within about :data:`PROBE_DEADLINE`
    seconds with an :class:`ArgillaIOError` whose message says what to do. The key is never logged, stored or put
    in a message. (The SDK keeps the last client it built as a process-wide default; every call here passes its own
    client explicitly, so one session never works with another session's client.)

Dataset layout (made by :func:`build_settings`; one record per raw row, record id = the raw ``id``)
    - fields ``prompt`` and ``response_1`` .. ``response_N`` (N = the most responses a row has among the rows
      being sent, at least 2 and at most :data:`MAX_RESPONSES` = 4: the human answer plus up to three models;
      further model responses of a row are not sent). Responses are shown in a per-record random order (seeded
      by ``seed`` and the record id, so re-sending gives the same order) unless ``keep_order`` is set; the raw
      index of each shown response is kept in the hidden metadata ``source_index_<k>``, which is how
      :func:`pull` maps answers back to the raw ``responses`` order. Text is shown as plain text (no markdown).
    - questions ``rating_<k>`` (1-5, required for the first two responses), ``preference`` (``response_<k>`` or
      ``tie``, required) and ``improved_response`` (optional text).
    - suggestions: the judge's rating of each response (agent = the judge model), unless ``suggestions=False``.
    - metadata for filtering: ``language_<k>``, ``language_confidence_<k>``, ``language_match_<k>``
      (yes/no/unsupported), ``judge_rating_<k>``, ``rating_margin``, ``all_in_language``, ``n_responses``,
      ``generator_model``, ``judge_model``, ``status``; hidden from annotators: ``source_index_<k>``,
      ``raw_responses`` (length of the raw ``responses`` list) and ``order_seed``.
    - guidelines from the template ``pipeline/argilla/guidelines.md`` (``$language``, ``$n_responses``,
      ``$judge_model``), or the caller's own (e.g. translated) text.

Sending twice never duplicates: rows whose id is already in the dataset are left untouched (their answers are
kept), only new rows are added. An existing dataset is reused only when its fields, questions and metadata are
the ones above (guidelines, titles and the task distribution may have been edited in Argilla); otherwise the
send stops with a message. Nothing is ever deleted.

Pull reads the submitted answers of every annotator (it needs an owner or admin key: Argilla does not let
annotators list other people's answers), aggregates them per record with :mod:`pipeline.judge.agreement` into
``schema.ANNOTATION_COLUMNS`` plus :data:`EXTRA_ANNOTATION_COLUMNS` (the judge's ratings and preference, and the
number of discards), and reports progress and judge-versus-human agreement.
"""

from __future__ import annotations

import os
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Final
from urllib.parse import urlsplit

import pyarrow as pa

from pipeline.core import languages, netguard, schema
from pipeline.judge import agreement

MAX_RESPONSES: Final = 4
MIN_RESPONSES: Final = 2
PROBE_DEADLINE: Final = 10.0  # seconds: the longest a connection check may take
CONNECT_TIMEOUT: Final = 3.0
PROBE_READ_TIMEOUT: Final = 5.0
READ_TIMEOUT: Final = 60.0  # bulk writes to a busy Space can be slow
BATCH_SIZE: Final = 200
LIST_BATCH: Final = 500

PROMPT_FIELD: Final = "prompt"
PREFERENCE_QUESTION: Final = "preference"
IMPROVED_QUESTION: Final = "improved_response"
TIE_LABEL: Final = "tie"
ENV_URL: Final = "ARGILLA_API_URL"
ENV_KEY: Final = "ARGILLA_API_KEY"
GUIDELINES_TEMPLATE: Final = Path(__file__).with_name("guidelines.md")
GUIDELINES_MAX_CHARS: Final = 10_000  # Argilla's limit

EXTRA_ANNOTATION_COLUMNS: Final = schema.EXTRA_ANNOTATION_COLUMNS  # judge_ratings, judge_preference, n_discarded

SKIP_FEW_RESPONSES: Final = "fewer than 2 non-empty responses (e.g. generation failed)"
SKIP_NO_ID: Final = "no id or prompt"
SKIP_DUPLICATE: Final = "duplicate id in the table (the last one is sent)"


def response_field(k: int) -> str:
    return f"response_{k}"


def rating_question(k: int) -> str:
    return f"rating_{k}"


def source_key(k: int) -> str:
    return f"source_index_{k}"


class ArgillaIOError(Exception):
    """A problem with Argilla that the user can fix; the message says how (and never contains the key)."""


# --- Connection -----------------------------------------------------------------------------------------------
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
        raise ArgillaIOError(f"Could not open a session with Argilla at {final_url}: {_describe(exc)}") from None
    role = str(me.get("role", "")).split(".")[-1]
    return Connection(url=final_url, username=str(me.get("username", "")), role=role, client=client)


def _describe(exc: BaseException) -> str:
    """A short, key-free description of an SDK/HTTP error."""
    text = str(exc).replace("\n", " ")
    return (text[:300] + "…") if len(text) > 300 else text


def list_workspaces(conn: Connection) -> list[str]:
    """Names of the workspaces the user belongs to."""
    try:
        return sorted(ws.name for ws in conn.client.workspaces.list())
    except Exception as exc:  # noqa: BLE001
        raise ArgillaIOError(f"Could not list Argilla workspaces: {_describe(exc)}") from None


def _workspace(conn: Connection, name: str | None) -> Any:
    try:
        spaces = conn.client.workspaces.list()
    except Exception as exc:  # noqa: BLE001
        raise ArgillaIOError(f"Could not list Argilla workspaces: {_describe(exc)}") from None
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


def _find_dataset(conn: Connection, name: str, ws: Any) -> Any | None:
    try:
        for dataset in ws.datasets:  # (``client.datasets(name)`` warns when it finds nothing)
            if dataset.name == name:
                return dataset.get()
        return None
    except Exception as exc:  # noqa: BLE001
        raise ArgillaIOError(f"Could not read dataset {name!r}: {_describe(exc)}") from None


def dataset_url(conn: Connection, dataset: Any) -> str:
    """Where annotators open the dataset in Argilla's UI."""
    return f"{conn.url}/dataset/{dataset.id}/annotation-mode"


# --- Names and guidelines ----------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")


def default_dataset_name(username: str | None, language: str | None) -> str:
    """``dpo-<language>-<user>`` (e.g. ``dpo-nld-alice``); parts that are unknown are left out."""
    parts = ["dpo", _slug(language or ""), _slug(username or "")]
    return "-".join(p for p in parts if p)


def guidelines_template() -> str:
    """The guidelines template (markdown with ``$language``, ``$n_responses``, ``$judge_model``)."""
    return GUIDELINES_TEMPLATE.read_text(encoding="utf-8")


def render_guidelines(
    language: str | None, n_responses: int = 2, judge_model: str | None = None, template: str | None = None
) -> str:
    """The guidelines for a language; unknown placeholders are left as they are."""
    text = Template(template if template is not None else guidelines_template()).safe_substitute(
        language=language or "your language",
        n_responses=str(n_responses),
        judge_model=judge_model or "an LLM",
    )
    return text[:GUIDELINES_MAX_CHARS]


# --- Settings --------------------------------------------------------------------------------------------------
def build_settings(n_slots: int, guidelines: str | None = None, min_submitted: int = 1, client: Any = None) -> Any:
    """The Argilla ``Settings`` for ``n_slots`` responses per record (see the module docstring)."""
    import argilla as rg

    if not MIN_RESPONSES <= n_slots <= MAX_RESPONSES:
        raise ValueError(f"n_slots must be between {MIN_RESPONSES} and {MAX_RESPONSES}")
    slots = range(1, n_slots + 1)
    fields = [rg.TextField(name=PROMPT_FIELD, title="Prompt", use_markdown=False, client=client)]
    fields += [
        rg.TextField(
            name=response_field(k),
            title=f"Response {k}",
            required=k <= MIN_RESPONSES,
            use_markdown=False,
            client=client,
        )
        for k in slots
    ]
    questions: list[Any] = [
        rg.RatingQuestion(
            name=rating_question(k),
            values=[1, 2, 3, 4, 5],
            title=f"Rate response {k} (1 = very poor, 5 = excellent)",
            required=k <= MIN_RESPONSES,
            client=client,
        )
        for k in slots
    ]
    labels = {response_field(k): f"Response {k}" for k in slots}
    labels[TIE_LABEL] = "Tie"
    questions.append(
        rg.LabelQuestion(
            name=PREFERENCE_QUESTION, labels=labels, title="Which response is best?", required=True, client=client
        )
    )
    questions.append(
        rg.TextQuestion(
            name=IMPROVED_QUESTION,
            title="Optional: rewrite the best response to make it better",
            required=False,
            use_markdown=False,
            client=client,
        )
    )
    metadata: list[Any] = []
    for k in slots:
        metadata += [
            rg.TermsMetadataProperty(name=f"language_{k}", title=f"Detected language of response {k}", client=client),
            rg.FloatMetadataProperty(
                name=f"language_confidence_{k}", title=f"Language confidence of response {k}", client=client
            ),
            rg.TermsMetadataProperty(
                name=f"language_match_{k}", title=f"Response {k} in the target language", client=client
            ),
            rg.IntegerMetadataProperty(
                name=f"judge_rating_{k}", title=f"Judge's rating of response {k}", min=1, max=5, client=client
            ),
            rg.IntegerMetadataProperty(
                name=source_key(k),
                title=f"Raw index of response {k}",
                min=0,
                visible_for_annotators=False,
                client=client,
            ),
        ]
    metadata += [
        rg.IntegerMetadataProperty(
            name="rating_margin", title="Judge's rating margin (best - second best)", min=0, max=4, client=client
        ),
        rg.TermsMetadataProperty(name="all_in_language", title="All responses in the target language", client=client),
        rg.IntegerMetadataProperty(
            name="n_responses", title="Number of responses", min=MIN_RESPONSES, max=MAX_RESPONSES, client=client
        ),
        rg.TermsMetadataProperty(name="generator_model", title="Generator model", client=client),
        rg.TermsMetadataProperty(name="judge_model", title="Judge model", client=client),
        rg.TermsMetadataProperty(name="status", title="Pipeline status", client=client),
        rg.IntegerMetadataProperty(
            name="raw_responses", title="Responses in the raw row", min=0, visible_for_annotators=False, client=client
        ),
        rg.IntegerMetadataProperty(name="order_seed", title="Order seed", visible_for_annotators=False, client=client),
    ]
    return rg.Settings(
        fields=fields,
        questions=questions,
        metadata=metadata,
        guidelines=guidelines or None,
        distribution=rg.TaskDistribution(min_submitted=max(1, int(min_submitted))),
    )


def _signature(settings: Any) -> tuple:
    """What must match for records to be appended: names, types and options of fields, questions and metadata.

    Titles, guidelines, descriptions, visibility and the task distribution may differ (people edit them in
    Argilla)."""

    def options(s: dict) -> Any:
        kind = s.get("type")
        if kind == "rating":
            return tuple(sorted(o.get("value") for o in s.get("options") or []))
        if kind == "label_selection":
            return tuple(sorted(o.get("value") for o in s.get("options") or []))
        return None

    fields = tuple(sorted((f["name"], f["settings"].get("type")) for f in settings.fields.serialize()))
    questions = tuple(
        sorted((q["name"], q["settings"].get("type"), options(q["settings"])) for q in settings.questions.serialize())
    )
    metadata = tuple(sorted((m["name"], (m.get("settings") or {}).get("type")) for m in settings.metadata.serialize()))
    return fields, questions, metadata


def _slots_of(dataset: Any) -> int:
    names = {f.name for f in dataset.settings.fields}
    return sum(1 for k in range(1, MAX_RESPONSES + 1) if response_field(k) in names)


# --- Records ---------------------------------------------------------------------------------------------------
@dataclass
class PlannedRecord:
    """One record to send, before it becomes an ``rg.Record``."""

    id: str
    fields: dict[str, str]
    metadata: dict[str, Any]
    suggestions: dict[str, int]  # question name -> judge rating
    judge_model: str
    order: list[int]  # raw index shown in slot k+1


@dataclass
class Plan:
    records: list[PlannedRecord]
    skipped: dict[str, int]
    n_slots: int  # response fields needed (2..MAX_RESPONSES)
    truncated: int  # rows with more than MAX_RESPONSES non-empty responses (the extra ones are not sent)


def _rows(raw: Any) -> list[dict]:
    if raw is None:
        return []
    if isinstance(raw, pa.Table):
        return raw.to_pylist()
    if hasattr(raw, "to_pylist"):
        return list(raw.to_pylist())
    return [dict(r) for r in raw]


def _at(values: Any, i: int) -> Any:
    try:
        return values[i] if values is not None else None
    except (IndexError, TypeError):
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(round(f)) if f == f else None


def response_order(record_id: str, candidates: Sequence[int], seed: int, keep_order: bool = False) -> list[int]:
    """The raw indices in display order: shuffled per record (same seed + id → same order) or kept as they are."""
    order = list(candidates)
    if not keep_order:
        random.Random(f"{seed}:{record_id}").shuffle(order)
    return order


def plan_records(rows: Any, *, keep_order: bool = False, seed: int = 0, suggestions: bool = True) -> Plan:
    """Turn raw results (``schema.RAW_COLUMNS``) into records to send. Pure: no Argilla needed."""
    skipped: Counter = Counter()
    by_id: dict[str, dict] = {}
    for row in _rows(rows):
        rid = str(row.get("id") or "").strip()
        if not rid or not str(row.get("prompt") or "").strip():
            skipped[SKIP_NO_ID] += 1
            continue
        if rid in by_id:
            skipped[SKIP_DUPLICATE] += 1
            del by_id[rid]  # the last one wins, like the pipeline's checkpoint
        by_id[rid] = row
    records: list[PlannedRecord] = []
    truncated = 0
    for rid, row in by_id.items():
        responses = list(row.get("responses") or [])
        candidates = [i for i, r in enumerate(responses) if isinstance(r, str) and r.strip()]
        if len(candidates) < MIN_RESPONSES:
            skipped[SKIP_FEW_RESPONSES] += 1
            continue
        if len(candidates) > MAX_RESPONSES:
            truncated += 1
            candidates = candidates[:MAX_RESPONSES]
        order = response_order(rid, candidates, seed, keep_order)
        sources = list(row.get("response_sources") or [])
        ratings = list(row.get("ratings") or [])
        judge_model = str(row.get("judge_model") or "")
        fields = {PROMPT_FIELD: str(row["prompt"])}
        metadata: dict[str, Any] = {"n_responses": len(order), "raw_responses": len(responses), "order_seed": int(seed)}
        suggested: dict[str, int] = {}
        matches = []
        shown_ratings = []
        for k, index in enumerate(order, start=1):
            fields[response_field(k)] = responses[index]
            metadata[source_key(k)] = index
            lang = _at(row.get("detected_languages"), index)
            metadata[f"language_{k}"] = str(lang) if lang else "unknown"
            conf = _at(row.get("language_confidences"), index)
            if conf is not None and conf == conf:
                metadata[f"language_confidence_{k}"] = float(conf)
            match = _at(row.get("language_match"), index)
            matches.append(match)
            metadata[f"language_match_{k}"] = "unsupported" if match is None else ("yes" if match else "no")
            rating = _int_or_none(_at(ratings, index))
            shown_ratings.append(rating)
            if rating is not None and 1 <= rating <= 5:
                metadata[f"judge_rating_{k}"] = rating
                if suggestions:
                    suggested[rating_question(k)] = rating
        margin = agreement.rating_margin(shown_ratings)
        if margin is not None:
            metadata["rating_margin"] = int(margin)
        metadata["all_in_language"] = (
            "unknown" if any(m is None for m in matches) else ("yes" if all(matches) else "no")
        )
        models = sorted({str(s) for s in sources if s and s != schema.HUMAN})
        if models:
            metadata["generator_model"] = models if len(models) > 1 else models[0]
        if judge_model:
            metadata["judge_model"] = judge_model
        if row.get("status"):
            metadata["status"] = str(row["status"])
        records.append(PlannedRecord(rid, fields, metadata, suggested, judge_model, order))
    n_slots = max([MIN_RESPONSES, *(len(r.order) for r in records)])
    return Plan(records=records, skipped=dict(skipped), n_slots=n_slots, truncated=truncated)


def _to_rg_record(planned: PlannedRecord) -> Any:
    import argilla as rg

    suggestions = [
        rg.Suggestion(question_name=q, value=v, agent=planned.judge_model or None, type="model")
        for q, v in planned.suggestions.items()
    ]
    return rg.Record(id=planned.id, fields=planned.fields, metadata=planned.metadata, suggestions=suggestions)


def _record_models(conn: Connection, dataset: Any, with_responses: bool) -> Iterable[Any]:
    """The dataset's records as the SDK's API models, page by page.

    We read the API models (``client.api.records.list``) rather than ``dataset.records``: the high-level ``Record``
    drops a response without values (e.g. a discard with an empty form), and we count discards."""
    offset = 0
    while True:
        page = conn.client.api.records.list(
            dataset_id=dataset.id,
            offset=offset,
            limit=LIST_BATCH,
            with_suggestions=False,
            with_responses=with_responses,
        )
        yield from page
        if len(page) < LIST_BATCH:
            return
        offset += len(page)


def _existing_ids(conn: Connection, dataset: Any) -> set[str]:
    return {str(m.external_id) for m in _record_models(conn, dataset, False) if m.external_id is not None}


@dataclass
class PushResult:
    dataset: str
    workspace: str
    url: str
    created: bool  # True when the dataset was made by this call
    added: int  # records sent now
    already_there: int  # rows whose id was already in the dataset (left untouched)
    skipped: dict[str, int]
    truncated: int
    total: int  # records in the dataset after the send
    n_slots: int

    def summary(self) -> str:
        parts = [
            f"{'Created' if self.created else 'Updated'} dataset {self.dataset!r} in workspace {self.workspace!r}: "
            f"{self.added} new record(s), {self.already_there} already there (left as they were), "
            f"{self.total} in total."
        ]
        if not self.created:
            parts.append("Its settings and guidelines were not changed (edit them in Argilla).")
        if self.skipped:
            parts.append("Not sent: " + "; ".join(f"{n} × {why}" for why, n in self.skipped.items()) + ".")
        if self.truncated:
            parts.append(
                f"{self.truncated} row(s) have more than {MAX_RESPONSES} responses: only the first {MAX_RESPONSES} "
                "were sent."
            )
        return " ".join(parts)


ProgressFn = Callable[[int, int], None]


def push(
    conn: Connection,
    raw: Any,
    dataset: str,
    workspace: str | None = None,
    *,
    keep_order: bool = False,
    seed: int = 0,
    suggestions: bool = True,
    min_submitted: int = 1,
    guidelines: str | None = None,
    language: str | None = None,
    progress: ProgressFn | None = None,
) -> PushResult:
    """Send the raw results to ``dataset`` (created if missing; appended to if its settings match).

    ``guidelines`` defaults to the template rendered for ``language`` (default: the rows' ``target_language``).
    ``progress(done, total)`` is called after each batch. Raises :class:`ArgillaIOError` with a clear message.
    """
    import argilla as rg

    name = (dataset or "").strip()
    if not name:
        raise ArgillaIOError("Give the dataset a name.")
    if len(name) > 200:
        raise ArgillaIOError("The dataset name is too long (200 characters at most).")
    rows = _rows(raw)
    if not rows:
        raise ArgillaIOError("There is nothing to send yet: run the pipeline first (or load its results).")
    if not conn.can_see_all_answers:
        raise ArgillaIOError(
            f"User {conn.username!r} is an {conn.role}: only owners and admins can create datasets and add records. "
            "Use an owner or admin API key."
        )
    plan = plan_records(rows, keep_order=keep_order, seed=seed, suggestions=suggestions)
    if not plan.records:
        reasons = "; ".join(f"{n} × {why}" for why, n in plan.skipped.items())
        raise ArgillaIOError(f"None of the {len(rows)} rows can be sent ({reasons}).")
    ws = _workspace(conn, workspace)
    existing = _find_dataset(conn, name, ws)
    created = False
    if existing is None:
        if language is None:
            codes = Counter(str(r.get("target_language") or "") for r in rows)
            language = languages.display_name(codes.most_common(1)[0][0]) if codes else None
        judges = Counter(r.judge_model for r in plan.records if r.judge_model)
        text = (
            guidelines
            if guidelines and guidelines.strip()
            else render_guidelines(language, plan.n_slots, judges.most_common(1)[0][0] if judges else None)
        )
        settings = build_settings(plan.n_slots, text[:GUIDELINES_MAX_CHARS], min_submitted, client=conn.client)
        try:
            ds = rg.Dataset(name=name, workspace=ws, settings=settings, client=conn.client).create()
        except Exception as exc:  # noqa: BLE001
            raise ArgillaIOError(_write_error(conn, "create the dataset", exc)) from None
        created = True
        have: set[str] = set()
    else:
        ds = existing
        want = build_settings(max(_slots_of(ds), MIN_RESPONSES), None, client=conn.client)
        if _slots_of(ds) < MIN_RESPONSES or _signature(ds.settings) != _signature(want):
            raise ArgillaIOError(
                f"Dataset {name!r} already exists in workspace {ws.name!r} with other settings (it was not made by "
                "this version of DPO Studio). Nothing was changed. Choose another dataset name; DPO Studio never "
                "deletes datasets."
            )
        if _slots_of(ds) < plan.n_slots:
            raise ArgillaIOError(
                f"Dataset {name!r} has room for {_slots_of(ds)} responses per record, but some rows have "
                f"{plan.n_slots}. Nothing was changed. Send these rows to a new dataset name."
            )
        try:
            have = _existing_ids(conn, ds)
        except Exception as exc:  # noqa: BLE001
            raise ArgillaIOError(f"Could not read the records of {name!r}: {_describe(exc)}") from None
    new = [r for r in plan.records if r.id not in have]
    done = 0
    if progress:
        progress(0, len(new))
    for start in range(0, len(new), BATCH_SIZE):
        batch = new[start : start + BATCH_SIZE]
        try:
            ds.records.log([_to_rg_record(r) for r in batch], batch_size=len(batch))
        except Exception as exc:  # noqa: BLE001
            raise ArgillaIOError(
                _write_error(conn, "add records", exc)
                + f" {done} of {len(new)} new records were added before the error; sending again adds the rest."
            ) from None
        done += len(batch)
        if progress:
            progress(done, len(new))
    return PushResult(
        dataset=name,
        workspace=ws.name,
        url=dataset_url(conn, ds),
        created=created,
        added=done,
        already_there=len(plan.records) - len(new),
        skipped=plan.skipped,
        truncated=plan.truncated,
        total=len(have) + done,
        n_slots=_slots_of(ds),
    )


def _write_error(conn: Connection, what: str, exc: BaseException) -> str:
    text = _describe(exc)
    if "forbidden" in text.lower() or "403" in text:
        return (
            f"Could not {what}: user {conn.username!r} (role {conn.role}) may not write here. Use an owner or "
            "admin API key."
        )
    return f"Could not {what}: {text}"


# --- Pull ------------------------------------------------------------------------------------------------------
@dataclass
class PullResult:
    dataset: str
    workspace: str
    url: str
    table: pa.Table  # ANNOTATION_COLUMNS + EXTRA_ANNOTATION_COLUMNS, one row per record with a submitted answer
    progress: dict[str, Any]  # agreement.progress(...)
    judge_agreement: dict[str, Any]  # agreement.judge_human_agreement(...)
    rating_difference: dict[str, Any]
    annotator_agreement: dict[str, Any]
    discarded_only: int  # records that were only discarded (not in the table)
    foreign: int  # records without DPO Studio metadata (ignored)
    annotators: dict[str, dict] = field(default_factory=dict)  # username -> {"submitted", "discarded", "draft"}

    def summary(self) -> str:
        p = self.progress
        if not p["total"]:
            return f"Dataset {self.dataset!r} has no records yet."
        text = f"{p['annotated']} of {p['total']} records have at least one submitted answer"
        if p.get("completed") is not None:
            text += f" ({p['completed']} complete)"
        text += "."
        if not p["annotated"]:
            text += " No answers yet: share the dataset link with your annotators."
        if self.discarded_only:
            text += f" {self.discarded_only} record(s) were discarded by everyone who saw them."
        if self.foreign:
            text += f" {self.foreign} record(s) were not sent by DPO Studio and are ignored."
        return text

    def agreement_summary(self) -> str:
        ag = self.judge_agreement
        if not ag["rows"]:
            return "Judge versus humans: no record has both a judge preference and a human answer yet."
        kappa = "n/a" if ag["kappa"] is None else f"{ag['kappa']:.2f}"
        text = (
            f"Judge versus humans: the judge picks the humans' best response in {ag['agree']} of {ag['rows']} "
            f"records ({ag['share']:.0%}); Cohen's kappa {kappa}."
        )
        rd = self.rating_difference
        if rd["mean_abs_diff"] is not None:
            text += f" Ratings differ by {rd['mean_abs_diff']:.2f} points on average ({rd['responses']} responses)."
        aa = self.annotator_agreement
        if aa["records"]:
            text += (
                f" Annotators agree on {aa['mean']:.0%} on average over the {aa['records']} records answered by two "
                f"or more people ({aa['unanimous']} unanimous)."
            )
        return text


def _slot_index(value: Any, n_slots: int) -> int | None:
    m = re.fullmatch(r"response_(\d+)", str(value or ""))
    if m and 1 <= int(m.group(1)) <= n_slots:
        return int(m.group(1))
    return None


def record_answers(
    responses: Iterable[Any], order: Sequence[int], users: Mapping[Any, str] | None = None
) -> tuple[list[agreement.Answer], int]:
    """Submitted answers of one record in raw index space, and the number of annotators who discarded it.

    ``responses`` are one record's user responses as Argilla's API gives them (objects or dicts with ``user_id``,
    ``status`` and ``values = {question: {"value": ...}}``); ``order[k-1]`` is the raw index shown as
    ``response_k``.
    """

    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    answers = []
    discarded = 0
    for response in responses:
        status = get(response, "status")
        status = str(getattr(status, "value", status))
        if status == "discarded":
            discarded += 1
        if status != "submitted":
            continue
        user = get(response, "user_id")
        raw_values = get(response, "values") or {}
        values = {q: (v.get("value") if isinstance(v, Mapping) else v) for q, v in raw_values.items()}
        ratings = {}
        for k, index in enumerate(order, start=1):
            value = _int_or_none(values.get(rating_question(k)))
            if value is not None:
                ratings[index] = value
        pref_value = values.get(PREFERENCE_QUESTION)
        if pref_value == TIE_LABEL:
            preference: int | None = agreement.TIE
        else:
            slot = _slot_index(pref_value, len(order))
            preference = order[slot - 1] if slot else None
        improved = values.get(IMPROVED_QUESTION)
        answers.append(
            agreement.Answer(
                user=(users or {}).get(user, str(user)),
                ratings=ratings,
                preference=preference,
                improved_response=improved if isinstance(improved, str) else None,
            )
        )
    return answers, discarded


def pull(
    conn: Connection, dataset: str, workspace: str | None = None, progress: ProgressFn | None = None
) -> PullResult:
    """Read every record's submitted answers and aggregate them (see the module docstring)."""
    name = (dataset or "").strip()
    if not name:
        raise ArgillaIOError("Give the name of the dataset to pull.")
    if not conn.can_see_all_answers:
        raise ArgillaIOError(
            f"User {conn.username!r} is an {conn.role}: Argilla shows everyone's answers only to owners and admins. "
            "Pull with an owner or admin API key."
        )
    ws = _workspace(conn, workspace)
    ds = _find_dataset(conn, name, ws)
    if ds is None:
        raise ArgillaIOError(f"Dataset {name!r} was not found in workspace {ws.name!r}. Send records first.")
    if _slots_of(ds) < MIN_RESPONSES or _signature(ds.settings) != _signature(
        build_settings(_slots_of(ds), client=conn.client)
    ):
        raise ArgillaIOError(
            f"Dataset {name!r} was not made by DPO Studio (its questions differ), so its answers cannot be read here."
        )
    try:
        users = {u.id: u.username for u in conn.client.users.list()}
    except Exception:  # noqa: BLE001 - names are a nicety
        users = {}
    try:
        expected = int(ds.progress().get("total") or 0)
    except Exception:  # noqa: BLE001 - only for the progress callback
        expected = 0
    if progress:
        progress(0, expected)
    rows: list[dict[str, Any]] = []
    total = completed = discarded_only = foreign = 0
    try:
        for record in _record_models(conn, ds, True):
            total += 1
            if record.status == "completed":
                completed += 1
            meta = (
                record.metadata
                if isinstance(record.metadata, Mapping)
                else {m.name: m.value for m in (record.metadata or [])}
            )
            order = []
            for k in range(1, MAX_RESPONSES + 1):
                index = _int_or_none(meta.get(source_key(k)))
                if index is None:
                    break
                order.append(index)
            if len(order) < MIN_RESPONSES:
                foreign += 1
                continue
            answers, n_discarded = record_answers(record.responses, order, users)
            if not answers:
                if n_discarded:
                    discarded_only += 1
                continue
            n = max(_int_or_none(meta.get("raw_responses")) or 0, max(order) + 1)
            row = {"id": str(record.external_id), **agreement.aggregate_answers(answers, n)}
            judge: list[int | None] = [None] * n
            for k, index in enumerate(order, start=1):
                judge[index] = _int_or_none(meta.get(f"judge_rating_{k}"))
            row["judge_ratings"] = [float(v) if v is not None else None for v in judge]
            row["judge_preference"] = agreement.preference_from_ratings(judge, order)
            row["n_discarded"] = n_discarded
            rows.append(row)
            if progress and total % LIST_BATCH == 0:
                progress(total, max(expected, total))
    except ArgillaIOError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ArgillaIOError(f"Could not read the records of {name!r}: {_describe(exc)}") from None
    annotators: dict[str, dict] = {}
    try:
        for username, stats in (ds.progress(with_users_distribution=True).get("users") or {}).items():
            counts: Counter = Counter()
            for part in ("completed", "pending"):
                counts.update({k: v for k, v in (stats.get(part) or {}).items() if isinstance(v, int)})
            annotators[username] = dict(counts)
    except Exception:  # noqa: BLE001 - annotators may not read progress; it is a nicety
        annotators = {}
    return PullResult(
        dataset=name,
        workspace=ws.name,
        url=dataset_url(conn, ds),
        table=schema.annotations_table(rows),
        progress=agreement.progress(total, len(rows), completed),
        judge_agreement=agreement.judge_human_agreement(
            (r["judge_preference"], agreement.human_choice(r["human_preference"], r["human_ratings"])) for r in rows
        ),
        rating_difference=agreement.rating_difference((r["judge_ratings"], r["human_ratings"]) for r in rows),
        annotator_agreement=agreement.annotator_agreement(rows),
        discarded_only=discarded_only,
        foreign=foreign,
        annotators=annotators,
    )
