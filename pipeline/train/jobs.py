"""Train, on Hugging Face Jobs: the ONLY module that talks to HF Jobs (hardware and prices, launch, status, logs,
metrics, cancel), through ``huggingface_hub``'s Jobs API, with the caller's token on every call.

A training job runs the script that :func:`pipeline.train.settings.render_script` wrote, with ``uv run`` in
``huggingface_hub``'s uv image (``DEFAULT_UV_IMAGE``), so the script's PEP 723 dependencies install themselves.
The script travels in the job's command, so the job page shows exactly what ran. (``run_uv_job`` would instead
upload a local script to a Storage Bucket in the user's namespace first.) The token goes to the job as the secret
``HF_TOKEN``: never in the command, the environment or a label, so the job's page and logs never show it.

Jobs are billed to the namespace that runs them and need a paid account (PRO, or an organisation with a payment
method). :func:`payment_note` says so before the click; the Hub's refusal becomes a :class:`JobsError` that says
what to do. Jobs carry the label ``dpo-studio=train``, so :func:`find_latest` finds a user's last training again
after a reload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from pipeline.train.estimate import Flavor, flavor_from_hardware
from pipeline.train.progress import TrainProgress

LABEL: Final = {"dpo-studio": "train"}
MODEL_ENV: Final = "DPO_STUDIO_MODEL"  # the model repo the job pushes to (not secret; shown on the job's page)
TERMINAL: Final = ("COMPLETED", "CANCELED", "ERROR", "DELETED")
PAID_ACCOUNT: Final = (
    "HF Jobs run on Hugging Face's hardware and are billed per minute to the account that launches them: they need "
    "a PRO subscription or an organisation with a payment method (https://huggingface.co/settings/billing). "
    "Without one, download the script and run it yourself (`uv run train.py`)."
)
_COMMAND: Final = 'printf "%s" "$0" > /tmp/train.py && exec uv run /tmp/train.py'


class JobsError(Exception):
    """Something the user can fix; ``str(err)`` says what happened and what to do (never the token)."""


@dataclass(frozen=True)
class JobRef:
    """A training job: enough to find it again (kept in the session, or printed by the CLI)."""

    job_id: str
    namespace: str
    output_repo: str = ""
    flavor: str = ""


@dataclass
class JobView:
    """One look at a job: its stage, the tail of its logs, the training's progress read from them, its metrics."""

    ref: JobRef
    stage: str  # SCHEDULING, RUNNING, COMPLETED, CANCELED, ERROR, DELETED
    message: str = ""
    url: str = ""
    logs: list[str] = field(default_factory=list)  # the last lines, newest last
    progress: TrainProgress = field(default_factory=TrainProgress)
    metrics: dict[str, Any] = field(default_factory=dict)  # the hardware's last sample (CPU, memory, GPUs)

    @property
    def finished(self) -> bool:
        return self.stage in TERMINAL

    @property
    def model_url(self) -> str:
        """The pushed model's page (from the logs; from the repo name once the job completed)."""
        if self.progress.model_url:
            return self.progress.model_url
        if self.stage == "COMPLETED" and self.ref.output_repo:
            from huggingface_hub import constants

            return f"{constants.ENDPOINT.rstrip('/')}/{self.ref.output_repo}"
        return ""


def _api() -> Any:
    from huggingface_hub import HfApi

    return HfApi(library_name="dpo-studio")


def _explain(exc: Exception, action: str) -> JobsError:
    """A JobsError for a failed Jobs call: the refusal of an account that cannot pay, a bad token, no such job, the
    Hub unreachable."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, JobsError):
        return exc
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        said = (exc.server_message or "").strip()
        lowered = said.lower()
        if status == 402 or any(w in lowered for w in ("payment", "billing", "credit", "subscribe", " pro ")):
            return JobsError(f"The Hub refused to {action}: {said.rstrip('.') or 'payment required'}. {PAID_ACCOUNT}")
        if status == 401:
            return JobsError(f"The Hub refused the token to {action}: sign in again (or set a valid HF_TOKEN).")
        if status == 403:
            return JobsError(
                f"You may not {action} in this namespace ({said or 'forbidden'}): use your own account or an "
                "organisation where you can run jobs, with a token that may write."
            )
        if status == 404:
            return JobsError(f"Could not {action}: the job was not found (or your account cannot see it).")
        if status >= 500:
            return JobsError(f"The Hub had a problem (HTTP {status}) while trying to {action}; try again shortly.")
        return JobsError(f"The Hub refused to {action} (HTTP {status}): {said or exc}")
    if isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError)):
        return JobsError(f"Could not reach the Hugging Face Hub to {action}; check the connection and try again.")
    return JobsError(f"Could not {action}: {exc}")


def list_flavors(token: str | None) -> list[Flavor]:
    """HF Jobs' hardware flavours with their prices, cheapest first."""
    try:
        hardware = _api().list_jobs_hardware(token=token or False)
    except Exception as exc:
        raise _explain(exc, "list the Jobs hardware") from exc
    return sorted((flavor_from_hardware(h) for h in hardware), key=lambda f: (f.hourly_usd, f.name))


def payment_note(token: str | None) -> str:
    """What to say before the click: "" when the account can pay for Jobs, else why the Hub will refuse."""
    if not token:
        return "Sign in with Hugging Face to run the training on HF Jobs. " + PAID_ACCOUNT
    try:
        info = _api().whoami(token=token)
    except Exception:  # noqa: BLE001 - the note is advice; the launch reports a real refusal
        return ""
    if info.get("canPay") or info.get("isPro"):
        return ""
    return f"Your account ({info.get('name', '?')}) has no payment method on the Hub. {PAID_ACCOUNT}"


def launch(script: str, *, token: str, flavor: str, output_repo: str, namespace: str, timeout: str = "8h") -> JobRef:
    """Start ``script`` on HF Jobs in ``namespace`` on ``flavor``; the token goes as the job's ``HF_TOKEN``
    secret."""
    if not token:
        raise JobsError("Sign in with Hugging Face to run the training on HF Jobs.")
    from huggingface_hub._jobs_api import DEFAULT_UV_IMAGE

    try:
        job = _api().run_job(
            image=DEFAULT_UV_IMAGE,
            command=["bash", "-c", _COMMAND, script],
            env={MODEL_ENV: output_repo},
            secrets={"HF_TOKEN": token},
            flavor=flavor,
            timeout=timeout,
            labels=dict(LABEL),
            name=f"dpo-studio-train-{output_repo.split('/')[-1]}"[:60] if output_repo else "dpo-studio-train",
            namespace=namespace,
            token=token,
        )
    except Exception as exc:
        raise _explain(exc, "start the training job") from exc
    return JobRef(job.id, namespace, output_repo, flavor)


def view(ref: JobRef, token: str | None, tail: int = 200, metrics: bool = True) -> JobView:
    """The job's stage and message, the tail of its logs (with the training's progress read from all of them that
    came back) and, while it runs, its last hardware sample."""
    api = _api()
    try:
        job = api.inspect_job(job_id=ref.job_id, namespace=ref.namespace, token=token or False)
        lines = list(api.fetch_job_logs(job_id=ref.job_id, namespace=ref.namespace, tail=tail, token=token or False))
    except Exception as exc:
        raise _explain(exc, "read the training job") from exc
    stage = str(getattr(job.status.stage, "value", job.status.stage))
    sample: dict[str, Any] = {}
    if metrics and stage == "RUNNING":
        try:
            sample = next(
                iter(api.fetch_job_metrics(job_id=ref.job_id, namespace=ref.namespace, token=token or False)), {}
            )
        except Exception:  # noqa: BLE001 - metrics are a nicety; the stage and logs are what matter
            sample = {}
    output_repo = ref.output_repo or str((job.environment or {}).get(MODEL_ENV) or "")
    ref = JobRef(ref.job_id, ref.namespace, output_repo, ref.flavor or str(job.flavor or ""))
    return JobView(
        ref=ref,
        stage=stage,
        message=job.status.message or "",
        url=getattr(job, "url", "") or "",
        logs=[line.rstrip("\n") for line in lines],
        progress=TrainProgress.from_lines(lines),
        metrics=dict(sample),
    )


def cancel(ref: JobRef, token: str | None) -> None:
    try:
        _api().cancel_job(job_id=ref.job_id, namespace=ref.namespace, token=token or False)
    except Exception as exc:
        raise _explain(exc, "cancel the training job") from exc


def find_latest(token: str | None, namespace: str) -> JobRef | None:
    """The newest DPO Studio training job in ``namespace`` (by its label), or None."""
    try:
        jobs = list(_api().list_jobs(labels=dict(LABEL), namespace=namespace, token=token or False))
    except Exception as exc:
        raise _explain(exc, "list your training jobs") from exc
    if not jobs:
        return None
    newest = max(jobs, key=lambda j: j.created_at.timestamp() if j.created_at else 0.0)
    repo = str((newest.environment or {}).get(MODEL_ENV) or "")
    return JobRef(newest.id, namespace, repo, str(newest.flavor or ""))


def metrics_line(sample: dict[str, Any]) -> str:
    """ "CPU 85%, memory 3.1/15.0 GB, GPU 97% (18.2/24.0 GB)" from a metrics sample ("" when there is none)."""
    if not sample:
        return ""
    gb = 1024**3
    parts = []
    if "cpu_usage_pct" in sample:
        parts.append(f"CPU {float(sample['cpu_usage_pct']):.0f}%")
    if sample.get("memory_total_bytes"):
        parts.append(f"memory {sample.get('memory_used_bytes', 0) / gb:.1f}/{sample['memory_total_bytes'] / gb:.1f} GB")
    for gpu in (sample.get("gpus") or {}).values():
        parts.append(
            f"GPU {float(gpu.get('utilization', 0)):.0f}% "
            f"({gpu.get('memory_used_bytes', 0) / gb:.1f}/{gpu.get('memory_total_bytes', 0) / gb:.1f} GB)"
        )
    return ", ".join(parts)
