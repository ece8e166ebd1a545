"""The Argilla tab's messages when no Argilla server answers (no stack needed): the key in the box is used, not
reported missing; the judge check's labels are not shown as if a pull had brought them; Argilla is said to be
optional."""

from __future__ import annotations

import socket

from tests.test_judgecheck import raw_table
from ui import argilla_tab as tab
from ui import judge_check
from ui.session import Session


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_failed_connect_then_pull_says_what_happened_not_that_the_key_is_missing(monkeypatch):
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    session = Session()
    session.raw = raw_table(20)
    judge_check.load_tasks(session, {"rows": 10})
    for _ in range(4):
        judge_check.answer(session, "A")
    assert session.annotations.num_rows == 4
    url = _closed_port_url()
    values = {"url": url, "key": "argilla.apikey-typed", "workspace": None, "dataset": "dpo-nld"}
    connect_status = tab.on_connect(session, values)["conn_status"]
    assert "Not connected" in connect_status and "optional" in connect_status
    assert session.argilla_key == ""  # a failed connect keeps nothing
    out = tab.on_pull(session, values)
    status, answers = out["pull_status"], out["table"]
    assert "Not pulled" in status and "No Argilla API key" not in status  # the key in the box was used
    assert "optional" in status and "5. Export" in status
    assert answers.empty  # the judge check's labels are not Argilla's answers
    assert session.annotations.num_rows == 4  # ...and they are kept for Export
    assert "Argilla is optional" in tab.INTRO
