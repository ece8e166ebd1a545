"""Train, the estimate: before anything starts, tokens × epochs give a time range and a cost range on a hardware
flavour (:class:`Flavor`, with its price from HF Jobs' hardware list).

The model: training costs about ``k × parameters × tokens`` floating-point operations, with ``k`` = 6 for a forward
and backward pass (8 with DPO's reference forward; LoRA skips the weight gradients, about a third less), and a
GPU delivers 15-40% of its peak bf16 throughput on this work. Add 3-8 minutes to start (image, dependencies, model
download) and two evaluation passes over the held-out pairs. Tokens are counted as UTF-8 bytes / 4 (no tokenizer
here): a fair guess for Latin scripts, an underestimate for others, so the range is wide on purpose. The number of
parameters comes from the model id ("0.6B", "135M") when it says it. Nothing here touches the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

# Peak dense bf16/fp16 tensor throughput per accelerator, in TFLOP/s (vendor figures, no sparsity).
PEAK_TFLOPS: Final = {
    "T4": 65.0,
    "A10G": 70.0,
    "A10": 125.0,
    "L4": 121.0,
    "L40S": 362.0,
    "A100": 312.0,
    "H100": 989.0,
    "H200": 989.0,
    "RTX PRO 6000": 500.0,
}
CPU_TFLOPS_PER_CORE: Final = 0.02  # a vCPU with AVX2 in float32, optimistic
UTILISATION: Final = (0.15, 0.40)
STARTUP_MINUTES: Final = (3.0, 8.0)
BYTES_PER_TOKEN: Final = 4.0


@dataclass(frozen=True)
class Flavor:
    """One HF Jobs hardware flavour with its price (``unit_cost_usd`` per ``unit_label``: "hour", "minute" …)."""

    name: str
    pretty_name: str
    unit_cost_usd: float
    unit_label: str
    cpu: str = ""
    ram: str = ""
    accelerator: str = ""  # the model, "A10G"; "" for CPU only
    accelerators: int = 0
    vram_gb: float = 0.0  # per accelerator

    @property
    def hourly_usd(self) -> float:
        per = {"second": 3600.0, "minute": 60.0, "hour": 1.0, "day": 1 / 24}.get(self.unit_label.lower().rstrip("s"))
        return self.unit_cost_usd * (per if per is not None else 1.0)

    @property
    def gpu(self) -> bool:
        return self.accelerators > 0

    @property
    def peak_tflops(self) -> float:
        if self.gpu:
            model = self.accelerator.upper()
            best = max((k for k in PEAK_TFLOPS if k in model), key=len, default="")
            return PEAK_TFLOPS.get(best, 60.0) * self.accelerators
        cores = _number(self.cpu) or 2.0
        return CPU_TFLOPS_PER_CORE * cores

    def label(self) -> str:
        """ "Nvidia A10G small — 1× A10G 24 GB — $1.00/hour" for a choice list."""
        hw = f"{self.accelerators}× {self.accelerator} {self.vram_gb:g} GB" if self.gpu else f"{self.cpu} vCPU"
        return f"{self.pretty_name} — {hw} — ${self.hourly_usd:.2f}/hour"


def _number(text: Any) -> float | None:
    match = re.search(r"\d+(?:\.\d+)?", str(text or ""))
    return float(match.group()) if match else None


def flavor_from_hardware(hw: Any) -> Flavor:
    """A :class:`Flavor` from ``huggingface_hub``'s ``JobHardwareInfo``."""
    acc = getattr(hw, "accelerator", None)
    return Flavor(
        name=hw.name,
        pretty_name=hw.pretty_name,
        unit_cost_usd=float(hw.unit_cost_usd),
        unit_label=str(hw.unit_label),
        cpu=str(hw.cpu),
        ram=str(hw.ram),
        accelerator=str(getattr(acc, "model", "") or "") if acc else "",
        accelerators=int(_number(getattr(acc, "quantity", 1)) or 1) if acc else 0,
        vram_gb=float(_number(getattr(acc, "vram", 0)) or 0) if acc else 0.0,
    )


def default_flavor(flavors: Iterable[Flavor], params_b: float | None, lora: bool) -> Flavor | None:
    """The cheapest GPU flavour whose memory should hold the run (see :func:`memory_gb`); else the cheapest GPU."""
    gpus = sorted((f for f in flavors if f.gpu), key=lambda f: f.hourly_usd)
    need = memory_gb(params_b, lora)
    fitting = [f for f in gpus if need is None or f.vram_gb * f.accelerators >= need]
    return fitting[0] if fitting else (gpus[0] if gpus else None)


def params_from_name(model_id: str) -> float | None:
    """Billions of parameters from a model id, when the id says it.

    >>> params_from_name("Qwen/Qwen3-0.6B"), params_from_name("HuggingFaceTB/SmolLM2-135M"), params_from_name("x/y")
    (0.6, 0.135, None)
    """
    match = re.search(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([BbMm])(?![a-zA-Z])", model_id.split("/")[-1])
    if not match:
        return None
    value = float(match.group(1))
    return value if match.group(2).lower() == "b" else value / 1000


def memory_gb(params_b: float | None, lora: bool) -> float | None:
    """Rough GPU memory for the run: bf16 weights, plus gradients and Adam state for full fine-tuning (16 bytes a
    parameter, with a bf16 reference copy), plus activations; None when the size is unknown."""
    if params_b is None:
        return None
    per_param = 2.5 if lora else 18.0
    return params_b * per_param + 4.0


def count_tokens(rows: Iterable[Mapping[str, Any]]) -> int:
    """Approximate tokens of the pairs as trained: the prompt twice (with the chosen and with the rejected answer)
    and both answers; a conversational value counts its messages' text."""

    def size(value: Any) -> int:
        if isinstance(value, str):
            return len(value.encode("utf-8"))
        if isinstance(value, list):
            return sum(size(m.get("content", "")) if isinstance(m, dict) else size(m) for m in value)
        return 0

    total = 0
    for row in rows:
        prompt = size(row.get("prompt"))
        total += 2 * prompt + size(row.get("chosen")) + size(row.get("rejected"))
    return int(total / BYTES_PER_TOKEN)


@dataclass(frozen=True)
class Estimate:
    """A time and cost range for one run on one flavour."""

    tokens: int  # per epoch
    epochs: float
    params_b: float | None
    flavor: Flavor
    minutes: tuple[float, float] | None  # None: the model's size is unknown
    cost_usd: tuple[float, float] | None
    memory_gb: float | None

    def text(self) -> str:
        """What the tab and the CLI show before the click."""
        head = f"~{self.tokens:,} tokens × {self.epochs:g} epochs on {self.flavor.pretty_name}"
        if self.minutes is None or self.cost_usd is None:
            return (
                f"{head}: the model's size is not in its id, so no time estimate; the flavour costs "
                f"${self.flavor.hourly_usd:.2f}/hour."
            )
        lo, hi = self.minutes
        text = (
            f"{head} ({self.params_b:g}B parameters): about {_duration(lo)}–{_duration(hi)}, "
            f"${self.cost_usd[0]:.2f}–${self.cost_usd[1]:.2f} at ${self.flavor.hourly_usd:.2f}/hour."
        )
        have = self.flavor.vram_gb * self.flavor.accelerators
        if self.memory_gb is not None and self.flavor.gpu and have < self.memory_gb:
            text += (
                f" Warning: this run needs roughly {self.memory_gb:.0f} GB of GPU memory and the flavour has "
                f"{have:g} GB: choose LoRA, a smaller model or a larger GPU."
            )
        return text


def _duration(minutes: float) -> str:
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def estimate(
    tokens_per_epoch: int,
    epochs: float,
    params_b: float | None,
    method: str,
    lora: bool,
    flavor: Flavor,
    eval_tokens: int = 0,
) -> Estimate:
    """The time and cost range (see the module's docstring for the model)."""
    if params_b is None:
        return Estimate(tokens_per_epoch, epochs, None, flavor, None, None, None)
    k = 6.0 + (2.0 if method == "dpo" else 0.0) - (2.0 if lora else 0.0)
    flops = k * params_b * 1e9 * tokens_per_epoch * epochs + 2 * 2 * params_b * 1e9 * eval_tokens
    peak = flavor.peak_tflops * 1e12
    utilisation = UTILISATION if flavor.gpu else (0.5, 1.0)
    fast, slow = flops / (peak * utilisation[1]) / 60, flops / (peak * utilisation[0]) / 60
    minutes = (STARTUP_MINUTES[0] + fast, STARTUP_MINUTES[1] + slow)
    cost = (minutes[0] / 60 * flavor.hourly_usd, minutes[1] / 60 * flavor.hourly_usd)
    return Estimate(tokens_per_epoch, epochs, params_b, flavor, minutes, cost, memory_gb(params_b, lora))
