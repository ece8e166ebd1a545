"""Train, the progress: what a running training script says, read from its output (a local run) or its logs (a job).

The script (:mod:`pipeline.train.trl_script`) prints one JSON record per line after ``DPO_STUDIO_EVENT``;
:class:`TrainProgress` folds them into typed state (steps, loss, the evaluation :class:`Figures`, the model's link),
the same for the CLI and the tab. A record may follow other text on the line (tqdm's progress bars end in ``\\r``,
not a newline). Nothing here touches the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from pipeline.train.trl_script import EVENT_PREFIX


@dataclass(frozen=True)
class Figures:
    """The evaluation on held-out pairs (see :func:`pipeline.train.trl_script.figures` for the definitions)."""

    pairs: int
    reward_accuracy_before: float
    reward_accuracy_after: float
    mean_margin_before: float
    mean_margin_after: float
    gain_share: float
    reward_margin: float

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Figures | None:
        try:
            values = {f.name: float(data[f.name]) for f in fields(cls) if f.name != "pairs"}
            return cls(pairs=int(data["pairs"]), **values)
        except (KeyError, TypeError, ValueError):
            return None

    def rows(self) -> list[tuple[str, str, str]]:
        """(figure, before, after) for a table."""
        return [
            (
                "Reward accuracy (chosen gets the higher log-probability)",
                f"{self.reward_accuracy_before:.1%}",
                f"{self.reward_accuracy_after:.1%}",
            ),
            (
                "Mean margin, log p(chosen) − log p(rejected) (nats)",
                f"{self.mean_margin_before:.3f}",
                f"{self.mean_margin_after:.3f}",
            ),
            ("Pairs whose chosen answer gained log-probability vs the rejected one", "", f"{self.gain_share:.1%}"),
        ]

    def summary(self) -> str:
        """One line for the CLI and notes."""
        return (
            f"on {self.pairs} held-out pairs: reward accuracy {self.reward_accuracy_before:.1%} -> "
            f"{self.reward_accuracy_after:.1%}; mean margin {self.mean_margin_before:.3f} -> "
            f"{self.mean_margin_after:.3f} nats; chosen gained vs rejected in {self.gain_share:.1%} of pairs "
            f"(reward margin {self.reward_margin:.4f})"
        )


@dataclass
class TrainProgress:
    """What the script has said so far. ``feed`` one line at a time (or :meth:`from_lines`)."""

    stage: str = ""  # the last event: start, data, train, log, trained, eval, pushed, saved, done
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    train_pairs: int = 0
    test_pairs: int = 0
    test_source: str = ""
    seconds_per_step: float | None = None
    figures: Figures | None = None
    model_url: str = ""
    saved_path: str = ""
    done: bool = False
    metrics: dict[str, float] = field(default_factory=dict)  # the last training log's numbers (TRL's names)

    def feed(self, line: str) -> bool:
        """Take one line of output; True when it held a record."""
        at = line.find(EVENT_PREFIX)
        if at < 0:
            return False
        try:
            record = json.loads(line[at + len(EVENT_PREFIX) :])
        except json.JSONDecodeError:
            return False
        if not isinstance(record, dict):
            return False
        event = str(record.get("event", ""))
        self.stage = event
        if event == "data":
            self.train_pairs = int(record.get("train_pairs") or 0)
            self.test_pairs = int(record.get("test_pairs") or 0)
            self.test_source = str(record.get("test_source") or "")
        elif event == "train":
            self.total_steps = int(record.get("total_steps") or 0)
        elif event == "log":
            self.step = int(record.get("step") or self.step)
            self.total_steps = int(record.get("total_steps") or self.total_steps)
            if isinstance(record.get("loss"), (int, float)):
                self.loss = float(record["loss"])
            self.metrics = {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        elif event == "trained":
            self.step = int(record.get("steps") or self.step)
            self.seconds_per_step = record.get("seconds_per_step")
        elif event == "eval":
            self.figures = Figures.from_mapping(record.get("figures") or {})
        elif event == "pushed":
            self.model_url = str(record.get("url") or "")
        elif event == "saved":
            self.saved_path = str(record.get("path") or "")
        elif event == "done":
            self.done = True
        return True

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> TrainProgress:
        progress = cls()
        for line in lines:
            for part in line.split("\r"):
                progress.feed(part)
        return progress

    def line(self) -> str:
        """One line saying where the run is."""
        if self.done:
            return "done" + (f": {self.model_url}" if self.model_url else "")
        if self.stage in ("", "start"):
            return "loading the data and the model"
        if self.stage == "data":
            return f"evaluating the base model on {self.test_pairs} held-out pairs"
        if self.stage in ("train", "log"):
            loss = f", loss {self.loss:.4f}" if self.loss is not None else ""
            return f"training: step {self.step}/{self.total_steps or '?'}{loss}"
        if self.stage == "trained":
            return "evaluating the trained model"
        if self.stage == "eval":
            return "pushing the model"
        return self.stage
