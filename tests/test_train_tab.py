"""The Train tab against the fake Hub's Jobs: from the export this session pushed to a running training with three
choices (all prefilled) and one click; status, metrics, logs, figures and the model's link; cancel; a reload finding
the job again; an account that cannot pay told before the click and after it; the script to download."""

from __future__ import annotations

import uuid

import gradio as gr
import pyarrow as pa
import pytest

from pipeline import train
from tests.fixtures.fakehub_jobs import JobPlan
from tests.test_train_jobs import Clock
from tests.train_helpers import learnable_raw_rows, script_output
from ui import export_tab, sign_in
from ui import train_tab as tab
from ui.common import md_text
from ui.session import Session

TOKEN = "hf_train_tab_dora"
POOR = "hf_train_tab_ed"


def _profile(name: str) -> gr.OAuthProfile:
    return gr.OAuthProfile({"name": name, "preferred_username": name, "profile": "", "picture": ""})


def _token(token: str) -> gr.OAuthToken:
    return gr.OAuthToken(token=token, scope="openid profile write-repos manage-repos", expires_at=0)


@pytest.fixture()
def hub(fake_hub):
    fake_hub.add_user("dora", TOKEN)
    fake_hub.add_user("ed", POOR)
    fake_hub.jobs.allow("dora")
    yield fake_hub
    fake_hub.jobs.reset()


def _pushed_session(user: str, token: str) -> Session:
    """A session that built and pushed an export in the Export tab (held-out prompts as its test split)."""
    session = Session()
    session.raw = pa.Table.from_pylist(learnable_raw_rows(16))
    name = f"fruit-dpo-{uuid.uuid4().hex[:6]}"
    values = {**export_tab.DEFAULTS, "language": "nld", "test_size": 4, "owner": user, "repo_name": name}
    message = export_tab.on_push(session, values, _profile(user), _token(token))["push_status"]
    assert message.startswith("**Pushed** 16 pairs"), message
    assert session.pushed_export == f"{user}/{name}"
    return session


OPEN_OUTPUTS = ("dataset", "base_model", "flavor", "payment", "estimate", "launch", "status", "figures", "logs")


def _open(session: Session, profile, token) -> tuple:
    """on_open's named outputs in the order people read them (index 1: the dataset ... 7: the job's status)."""
    out = tab.on_open(session, dict(tab.DEFAULTS), profile, token)
    return (session, *(out[k] for k in OPEN_OUTPUTS))


def _launch(session: Session, values: dict, profile, token) -> tuple:
    out = tab.on_launch(session, values, profile, token)
    return (session, *out.values())


def _opened(session: Session, user: str, token: str) -> tuple[dict, tuple]:
    """Open the tab; the form's values as the components now show them."""
    out = _open(session, _profile(user), _token(token))
    values = {**tab.DEFAULTS, "dataset": out[1]["value"], "base_model": out[2]["value"], "flavor": out[3]["value"]}
    return values, out


def test_from_the_pushed_export_to_a_trained_model_with_one_click(hub):
    clock = Clock()
    hub.jobs.clock = clock
    session = _pushed_session("dora", TOKEN)
    values, out = _opened(session, "dora", TOKEN)
    # The three choices are made for the user: the export just pushed, a model for its size, a GPU that fits.
    assert values["dataset"] == session.pushed_export
    assert values["base_model"] == "Qwen/Qwen3-0.6B" and values["flavor"] == "t4-small"
    assert any("T4" in label and "/hour" in label for label, _ in out[3]["choices"])
    assert out[4] == ""  # dora can pay: no warning
    assert "12 training pairs" in out[5] and "4 test pairs" in out[5] and "Estimate:" in out[5] and "$" in out[5]
    assert out[6]["interactive"] is True

    repo = train.default_output_repo("dora", session.pushed_export, "Qwen/Qwen3-0.6B", "dpo")
    hub.jobs.next_plan = JobPlan(
        scheduling_s=2, running_s=4, logs=script_output(f"{hub.url}/{repo}"), creates={repo: {"README.md": "# m\n"}}
    )
    session, status, figures, logs, cancel, timer = _launch(session, values, _profile("dora"), _token(TOKEN))
    assert "SCHEDULING" in status and cancel["interactive"] is True and timer.active
    job = hub.jobs.all()[-1]
    assert job.spec["secrets"] == {"HF_TOKEN": TOKEN} and job.spec["environment"]["DPO_STUDIO_MODEL"] == repo
    assert session.train_tab.job is not None and session.train_tab.job.job_id == job.id

    clock.advance(2 + 4 * 5 / 12)
    status, figures, logs, cancel, timer = tab.on_poll(session, _token(TOKEN)).values()
    assert "RUNNING" in status and "training: step 1/24" in status and "GPU 97%" in status
    assert "Installed 61 packages" in logs and figures == [] and timer.active

    clock.advance(4)
    status, figures, logs, cancel, timer = tab.on_poll(session, _token(TOKEN)).values()
    assert "COMPLETED" in status and f"({hub.url}/{repo})" in status
    assert not timer.active and cancel["interactive"] is False
    assert figures[0][1:] == ["33.3%", "100.0%"] and figures[2][2] == "100.0%"

    reloaded = Session()  # a reload: a new session finds the job again
    _, out = _opened(reloaded, "dora", TOKEN)
    assert reloaded.train_tab.job is not None and reloaded.train_tab.job.job_id == job.id
    assert "COMPLETED" in out[7]


def test_cancel_from_the_tab(hub):
    session = _pushed_session("dora", TOKEN)
    values, _ = _opened(session, "dora", TOKEN)
    hub.jobs.next_plan = JobPlan(scheduling_s=0, running_s=3600)
    _launch(session, values, _profile("dora"), _token(TOKEN))
    status, *_, cancel, timer = tab.on_cancel(session, _token(TOKEN)).values()
    assert "CANCELED" in status and not timer.active and cancel["interactive"] is False


def test_an_account_that_cannot_pay_is_told_before_and_after_the_click(hub):
    session = _pushed_session("ed", POOR)
    values, out = _opened(session, "ed", POOR)
    assert "no payment method" in out[4] and "PRO" in out[4]
    session, status, *_ = _launch(session, values, _profile("ed"), _token(POOR))
    assert status.startswith("**Not started.**") and "Payment required" in status
    assert session.train_tab.job is None and not [j for j in hub.jobs.all() if j.namespace == "ed"]


def test_signed_out_the_tab_says_so_and_cannot_launch(hub):
    session = Session()
    out = _open(session, None, None)
    assert md_text(sign_in.needed()) in out[4] and out[6]["interactive"] is False and "Push an export" in out[5]
    assert sign_in.needed() in tab.on_launch(session, dict(tab.DEFAULTS), None, None)["status"]


def test_the_script_for_the_choices_shown(hub):
    session = _pushed_session("dora", TOKEN)
    values, _ = _opened(session, "dora", TOKEN)
    out = tab.on_script(session, {**values, "method": "orpo", "lora": False}, _profile("dora"), _token(TOKEN))
    path, text = out["script_file"], out["script"]
    assert open(path, encoding="utf-8").read() == text
    assert "'method': 'orpo'" in text and "'lora': False" in text and TOKEN not in text
