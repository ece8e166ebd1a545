"""Train on HF Jobs, against the fake Hub's Jobs endpoints: hardware and prices, the launch (the token only as a
secret), a job moving through its stages with logs, metrics and the model's link, cancel, a reload finding the job
again, the refusal of an account that cannot pay; and the CLI's `train --jobs`."""

from __future__ import annotations

import json
import uuid

import pytest

from pipeline import train
from pipeline.cli import main
from pipeline.core import hub
from tests.fixtures.fakehub_jobs import JobPlan
from tests.train_helpers import push_export, script_output

TOKEN = "hf_jobs_alice"
POOR = "hf_jobs_bob"


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def jobs_hub(fake_hub):
    fake_hub.add_user("alice", TOKEN, orgs={"team": "write"})
    fake_hub.add_user("bob", POOR)
    fake_hub.jobs.allow("alice")
    yield fake_hub
    fake_hub.jobs.reset()


@pytest.fixture()
def export(jobs_hub):
    repo = f"alice/aya-dutch-dpo-{uuid.uuid4().hex[:6]}"
    push_export(repo, TOKEN, train=12, test=4)
    return repo


def _plan(dataset: str, token: str, namespace: str) -> train.TrainPlan:
    facts = train.read_export(dataset, token)
    settings = train.TrainSettings(dataset=dataset, base_model=train.suggest_base_model(facts.train_pairs)[0])
    return train.plan(settings, facts, namespace=namespace, flavors=train.list_flavors(token))


def test_hardware_comes_with_prices(jobs_hub):
    flavors = train.list_flavors(TOKEN)
    by_name = {f.name: f for f in flavors}
    assert by_name["a10g-small"].hourly_usd == pytest.approx(1.0, abs=0.01)
    assert by_name["a10g-small"].accelerator == "A10G" and by_name["a10g-small"].vram_gb == 24
    assert not by_name["cpu-basic"].gpu
    assert [f.hourly_usd for f in flavors] == sorted(f.hourly_usd for f in flavors)


def test_a_job_from_a_pushed_export_runs_through_its_stages_to_the_model(jobs_hub, export):
    clock = Clock()
    jobs_hub.jobs.clock = clock
    plan = _plan(export, TOKEN, "alice")
    assert plan.facts.train_pairs == 12 and plan.facts.test_pairs == 4 and plan.facts.language == "nl"
    assert plan.flavor is not None and plan.flavor.gpu and plan.estimate is not None
    assert plan.settings.output_repo == f"alice/Qwen3-0.6B-{export.split('/')[1]}-dpo"
    model_url = f"{jobs_hub.url}/{plan.settings.output_repo}"
    jobs_hub.jobs.next_plan = JobPlan(
        scheduling_s=5,
        running_s=10,
        logs=script_output(model_url),
        creates={plan.settings.output_repo: {"README.md": "---\nlicense: apache-2.0\n---\n# model\n"}},
    )
    assert train.payment_note(TOKEN) == ""
    ref = train.launch(plan, TOKEN)

    sent = jobs_hub.jobs.get(ref.job_id).spec
    assert sent["secrets"] == {"HF_TOKEN": TOKEN}  # the token travels only as a secret
    shown = json.dumps({k: v for k, v in sent.items() if k != "secrets"})
    assert TOKEN not in shown
    assert sent["command"][:2] == ["bash", "-c"] and "uv run" in sent["command"][2]
    assert sent["command"][3] == plan.script and sent["labels"]["dpo-studio"] == "train"
    assert sent["flavor"] == plan.flavor.name

    job = train.view(ref, TOKEN)
    assert job.stage == "SCHEDULING" and not job.logs and not job.finished
    clock.advance(5 + 10 * 5 / 12)  # running, half of the lines printed
    job = train.view(ref, TOKEN)
    assert job.stage == "RUNNING" and job.logs and job.logs[0] == "Installed 61 packages in 2.1s"
    assert job.progress.step == 1 and job.progress.total_steps == 24 and job.progress.figures is None
    assert job.metrics["gpus"] and "GPU 97%" in train.jobs.metrics_line(job.metrics)
    assert not jobs_hub.exists(plan.settings.output_repo, "model")
    clock.advance(10)
    job = train.view(ref, TOKEN)
    assert job.stage == "COMPLETED" and job.finished and job.metrics == {}
    assert job.progress.done and job.progress.figures is not None
    assert job.progress.figures.reward_accuracy_before == pytest.approx(1 / 3)
    assert job.progress.figures.reward_accuracy_after == 1.0
    assert job.model_url == model_url and jobs_hub.exists(plan.settings.output_repo, "model")
    assert len(train.view(ref, TOKEN, tail=3).logs) == 3

    again = train.find_latest(TOKEN, "alice")  # what a reload does
    assert again == train.JobRef(ref.job_id, "alice", plan.settings.output_repo, plan.flavor.name)


def test_cancel(jobs_hub, export):
    jobs_hub.jobs.next_plan = JobPlan(scheduling_s=0, running_s=3600)
    ref = train.launch(_plan(export, TOKEN, "alice"), TOKEN)
    assert train.view(ref, TOKEN).stage == "RUNNING"
    train.cancel(ref, TOKEN)
    job = train.view(ref, TOKEN)
    assert job.stage == "CANCELED" and job.finished and not job.model_url


def test_an_account_that_cannot_pay_is_told_before_and_after_the_click(jobs_hub, fake_hub):
    repo = f"bob/prefs-{uuid.uuid4().hex[:6]}"
    push_export(repo, POOR, train=6, test=2)
    note = train.payment_note(POOR)
    assert "no payment method" in note and "PRO" in note
    plan = _plan(repo, POOR, "bob")
    with pytest.raises(train.JobsError) as err:
        train.launch(plan, POOR)
    assert "Payment required" in str(err.value) and "settings/billing" in str(err.value)
    assert POOR not in str(err.value)
    assert not any(j.namespace == "bob" for j in fake_hub.jobs.all())


def test_no_jobs_in_a_namespace_you_cannot_write(jobs_hub, export):
    plan = _plan(export, TOKEN, "alice")
    other = train.plan(
        train.TrainSettings(dataset=export, base_model="Qwen/Qwen3-0.6B", output_repo="bob/model"),
        plan.facts,
        flavors=train.list_flavors(TOKEN),
    )
    with pytest.raises(hub.HubError, match="cannot write"):
        train.launch(other, TOKEN)


def test_the_cli_launches_follows_and_prints_the_figures(jobs_hub, export, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    repo = f"alice/cli-model-{uuid.uuid4().hex[:6]}"
    jobs_hub.jobs.next_plan = JobPlan(scheduling_s=0.1, running_s=0.3, logs=script_output(f"{jobs_hub.url}/{repo}"))
    code = main(
        [
            "train",
            "--dataset",
            export,
            "--jobs",
            "--flavor",
            "a10g-small",
            "--output-repo",
            repo,
            "--poll",
            "0.05",
            "--timeout",
            "90m",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "estimate: ~" in out and "$1.00/hour" in out
    assert "COMPLETED" in out and "reward accuracy 33.3% -> 100.0%" in out
    assert f"model: {jobs_hub.url}/{repo}" in out
    job = jobs_hub.jobs.all()[-1]
    assert job.spec["flavor"] == "a10g-small" and job.spec["timeoutSeconds"] == 5400
    assert TOKEN not in json.dumps(job.spec["command"])


def test_the_cli_says_why_an_account_cannot_run_jobs(jobs_hub, monkeypatch, capsys):
    repo = f"bob/prefs-{uuid.uuid4().hex[:6]}"
    push_export(repo, POOR, train=6, test=2)
    monkeypatch.setenv("HF_TOKEN", POOR)
    assert main(["train", "--dataset", repo, "--jobs"]) == 1
    captured = capsys.readouterr()
    assert "note: Your account (bob) has no payment method" in captured.out
    assert "Payment required" in captured.err and "PRO" in captured.err


def test_the_cli_writes_the_script(jobs_hub, export, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    path = tmp_path / "train.py"
    assert main(["train", "--dataset", export, "--method", "orpo", "--script-only", str(path)]) == 0
    script = path.read_text(encoding="utf-8")
    assert "'method': 'orpo'" in script and f"'dataset': '{export}'" in script and TOKEN not in script
