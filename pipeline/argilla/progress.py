"""Annotators in view: how far each DPO Studio dataset in a workspace has come, read from Argilla without changing
anything (the Argilla tab refreshes it on a timer while it is open).

For each dataset made by DPO Studio (its fields and questions are :mod:`pipeline.argilla.layout`'s): the records
with 0, 1, and 2 or more submitted answers, each annotator's submitted / discarded / draft answers, the last time
anyone answered, and the annotators' agreement so far (the mean per-record agreement over records answered by two
or more people, :func:`pipeline.judge.agreement.annotator_agreement`). Records are read as Argilla's API returns them
(``GET /api/v1/datasets/{id}/records?include=responses``, page by page) so each answer's ``updated_at`` is kept.
Reading everyone's answers needs an owner or admin key, as for a pull.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.argilla.connection import ArgillaIOError, Connection, dataset_url, describe, find_workspace
from pipeline.argilla.layout import MIN_RESPONSES, build_settings, signature, slots_of
from pipeline.argilla.records import LIST_BATCH, int_or_none, record_answers, shown_order
from pipeline.judge import agreement

STATUSES = ("submitted", "discarded", "draft")


@dataclass
class DatasetProgress:
    dataset: str
    url: str
    records: int = 0
    answered: Counter = field(default_factory=Counter)  # 0 / 1 / 2 (= two or more) -> records with that many
    annotators: dict[str, Counter] = field(default_factory=dict)  # username -> {submitted, discarded, draft}
    last_activity: str | None = None  # ISO time of the latest answer (any status)
    agreement: float | None = None  # mean per-record agreement over records with 2+ submitted answers
    agreement_records: int = 0

    def row(self) -> dict[str, Any]:
        """One line of the progress table."""
        return {
            "dataset": self.dataset,
            "records": self.records,
            "no answer": self.answered[0],
            "1 answer": self.answered[1],
            "2+ answers": self.answered[2],
            "answers": sum(c["submitted"] for c in self.annotators.values()),
            "last activity": (self.last_activity or "–").replace("T", " ")[:16],
            "agreement so far": "–" if self.agreement is None else f"{self.agreement:.0%} ({self.agreement_records})",
        }


def _pages(conn: Connection, dataset_id: Any) -> Iterator[dict]:
    offset = 0
    while True:
        response = conn.client.http_client.get(
            f"/api/v1/datasets/{dataset_id}/records",
            params={"offset": offset, "limit": LIST_BATCH, "include": ["responses"]},
        )
        response.raise_for_status()
        items = response.json().get("items") or []
        yield from items
        if len(items) < LIST_BATCH:
            return
        offset += len(items)


def dataset_progress(conn: Connection, ds: Any, users: Mapping[Any, str]) -> DatasetProgress:
    """Progress of one dataset (an SDK ``Dataset`` made by DPO Studio)."""
    result = DatasetProgress(dataset=ds.name, url=dataset_url(conn, ds))
    rows = []
    for record in _pages(conn, ds.id):
        result.records += 1
        responses = record.get("responses") or []
        submitted = 0
        for response in responses:
            status = str(response.get("status") or "")
            user = users.get(str(response.get("user_id")), str(response.get("user_id")))
            result.annotators.setdefault(user, Counter())[status] += 1
            submitted += status == "submitted"
            stamp = response.get("updated_at") or response.get("inserted_at")
            if stamp and (result.last_activity is None or str(stamp) > result.last_activity):
                result.last_activity = str(stamp)
        result.answered[min(submitted, 2)] += 1
        meta = record.get("metadata") or {}
        order = shown_order(meta)
        if submitted >= 2 and len(order) >= MIN_RESPONSES:
            answers, _ = record_answers(responses, order, {k: v for k, v in users.items()})
            n = max(int_or_none(meta.get("raw_responses")) or 0, max(order) + 1)
            rows.append(agreement.aggregate_answers(answers, n))
    together = agreement.annotator_agreement(rows)
    if together["records"]:
        result.agreement, result.agreement_records = together["mean"], together["records"]
    return result


def workspace_progress(conn: Connection, workspace: str | None = None) -> list[DatasetProgress]:
    """Progress of every DPO Studio dataset in ``workspace`` (default: the key's only workspace), by name."""
    if not conn.can_see_all_answers:
        raise ArgillaIOError(
            f"User {conn.username!r} is an {conn.role}: only owners and admins see everyone's answers. Connect with "
            "an owner or admin API key to follow the annotators."
        )
    ws = find_workspace(conn, workspace)
    try:
        users = {str(u.id): u.username for u in conn.client.users.list()}
        out = []
        for ds in sorted(ws.datasets, key=lambda d: d.name):
            ds = ds.get()
            slots = slots_of(ds)
            if slots < MIN_RESPONSES or signature(ds.settings) != signature(build_settings(slots, client=conn.client)):
                continue  # not made by DPO Studio
            out.append(dataset_progress(conn, ds, users))
        return out
    except ArgillaIOError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ArgillaIOError(f"Could not read the annotators' progress: {describe(exc)}") from None
