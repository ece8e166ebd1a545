"""Shared helpers for the generation-pipeline tests: input rows, a mock chat function, a fake language check."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field

import pyarrow as pa

from pipeline.core import schema
from pipeline.inference import Backend, ChatResult, InferenceError

JUDGE_MARK = "Your role is to evaluate text quality"
PAIRWISE_MARK = "Please act as an impartial judge"


def make_rows(n: int, *, prefix: str = "prompt", language_code: str = "nld") -> pa.Table:
    rows = []
    for i in range(n):
        prompt, response = f"{prefix} {i}", f"human answer {i}"
        rows.append(
            {
                "id": schema.row_id(prompt, response),
                "prompt": prompt,
                "response": response,
                "language": "Dutch",
                "language_code": language_code,
                "annotation_type": "original-annotations",
                "user_id": f"u{i % 3}",
            }
        )
    return pa.Table.from_pylist(rows)


def is_judge(messages: list[dict]) -> bool:
    return (
        bool(messages)
        and messages[0]["role"] == "system"
        and (messages[0]["content"].startswith(JUDGE_MARK) or messages[0]["content"].startswith(PAIRWISE_MARK))
    )


def _annotation(messages: list[dict]) -> str:
    return messages[-1]["content"].split("## Annotation", 1)[-1]


def judge_prompt(messages: list[dict]) -> str:
    """The row's prompt inside a judge request (UltraFeedback or pairwise)."""
    if messages[0]["content"].startswith(PAIRWISE_MARK):
        return user_text(messages).split("[User Question]\n", 1)[1].split("\n\n[The Start", 1)[0]
    return _annotation(messages).split("Instruction: ", 1)[1].split("\n", 1)[0]


def n_texts(messages: list[dict]) -> int:
    return len(re.findall(r"^<text \d+>", _annotation(messages), flags=re.M))


def judge_reply(n: int, ratings: list[int] | None = None) -> str:
    ratings = ratings or [min(5, 2 + i) for i in range(n)]
    return "\n\n".join(
        f"#### Output for Text {i + 1}\nRating: {ratings[i]}\nRationale: reason {i + 1}." for i in range(n)
    )


MODEL_RATINGS = {"model-b": 4}  # the mock judge's rating of a model's answer (others: 3; the human answer: 2)
_MODEL_TEXT = re.compile(r"^(?:(\S+) says:|Antwoord van (\S+):)")


def content_rating(text: str) -> int:
    """The mock judge's rating of one text, by its content (so the order the texts are shown in does not matter):
    "<model> says: ..." (MockChat) or "Antwoord van <model>: ..." (the services' responder) -> ``MODEL_RATINGS``
    or 3; anything else (the human answer) 2."""
    match = _MODEL_TEXT.match(text.strip())
    if not match:
        return 2
    return MODEL_RATINGS.get(match.group(1) or match.group(2), 3)


def is_pairwise(messages: list[dict]) -> bool:
    return "[The Start of Assistant A's Answer]" in user_text(messages)


def judge_answer(messages: list[dict], structured: bool) -> str:
    """A well-formed judge reply rating by content: JSON when ``structured``, else the text format."""
    user = user_text(messages)
    if is_pairwise(messages):
        a = user.split("[The Start of Assistant A's Answer]\n", 1)[1].split("\n[The End of Assistant A's Answer]")[0]
        b = user.split("[The Start of Assistant B's Answer]\n", 1)[1].split("\n[The End of Assistant B's Answer]")[0]
        ra, rb = content_rating(a), content_rating(b)
        winner = "A" if ra > rb else "B" if rb > ra else "tie"
        return json.dumps({"reason": "by content", "winner": winner}) if structured else f"By content. [[{winner}]]"
    texts = re.findall(r"^<text \d+> (.*)$", _annotation(messages), flags=re.M)
    ratings = [content_rating(t) for t in texts]
    if structured:
        return json.dumps({"ratings": [{"rating": r, "rationale": f"rated {r}."} for r in ratings]})
    return "\n\n".join(
        f"#### Output for Text {i + 1}\nRating: {r}\nRationale: rated {r}." for i, r in enumerate(ratings)
    )


def user_text(messages: list[dict]) -> str:
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


@dataclass
class MockChat:
    """An async chat function: generators answer "<model> says: <prompt>", the judge rates every text.

    Behaviour per prompt: a prompt containing EMPTY gets an empty generation, TOOLONG a too_long error, JUDGEFAIL a
    judge server error, GARBAGE an unparseable judge reply. ``fail`` overrides: ``fail(backend, messages, judge)``
    may raise or return a reply text. Records every call and the maximum number of calls in flight.
    """

    delay: float = 0.0
    fail: object = None
    calls: list[tuple[str, str, bool]] = field(default_factory=list)  # (model, user text, is_judge)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (start|end, kind, prompt)
    in_flight: int = 0
    max_in_flight: int = 0

    async def __call__(self, backend: Backend, messages: list[dict], params, token) -> ChatResult:
        judge = is_judge(messages)
        text = user_text(messages)
        prompt = judge_prompt(messages) if judge else text
        self.calls.append((backend.model, prompt, judge))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.events.append(("start", "judge" if judge else backend.model, prompt))
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            else:
                await asyncio.sleep(0)
            if self.fail is not None:
                out = self.fail(backend, messages, judge)
                if out is not None:
                    return ChatResult(out, "stop", 10, 10, 0.0)
            if judge:
                if "JUDGEFAIL" in prompt:
                    raise InferenceError("judge server error (500)", kind="server", status=500, retryable=True)
                if "GARBAGE" in prompt:
                    return ChatResult("Both texts are lovely. I cannot choose.", "stop", 100, 9, 0.0)
                return ChatResult(judge_answer(messages, params.response_format is not None), "stop", 100, 40, 0.0)
            if "EMPTY" in prompt:
                return ChatResult("   ", "length", 10, 0, 0.0)
            if "TOOLONG" in prompt:
                raise InferenceError("the prompt is too long (400)", kind="too_long", status=400)
            return ChatResult(f"{backend.model} says: {prompt}", "stop", 10, 5, 0.0)
        finally:
            self.in_flight -= 1
            self.events.append(("end", "judge" if judge else backend.model, prompt))


@dataclass(frozen=True)
class FakeCheck:
    detected: str | None
    confidence: float | None
    match: bool | None


def fake_detect(texts: list[str], target: str) -> list[FakeCheck]:
    """Everything is detected as the target language, except texts containing 'English' (eng)."""
    out = []
    for text in texts:
        code = "eng" if "English" in text else target
        out.append(FakeCheck(code, 0.9, code == target))
    return out
