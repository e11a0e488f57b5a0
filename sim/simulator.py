"""Where a customer reply is generated: prompt, stream, clean, guard, repair or regenerate."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage

from sim.guard import Probe, Violation, check_reply, in_character_line, repair
from sim.persona import HiddenFact, Persona
from sim.postprocess import SENTENCE_END, agent_took_over, clean_reply
from sim.prompt import Message, build_messages


class SimulatorError(RuntimeError):
    """The model failed to produce a reply; the message is fit to show the trainee."""


@dataclass
class Reply:
    text: str
    attempts: list[str] = field(default_factory=list)
    breaks: list[str] = field(default_factory=list)
    fallback: bool = False
    interventions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def regenerated(self) -> bool:
        return len(self.attempts) > 1

    def meta(self) -> dict[str, object]:
        return {
            "regenerated": self.regenerated,
            "breaks": self.breaks,
            "fallback": self.fallback,
            "guard": self.interventions,
        }


@dataclass(frozen=True)
class GuardContext:
    """What the character guard needs to know about this turn."""

    locked: Sequence[HiddenFact] = ()
    probe: Probe | None = None
    mood: float = 5.0
    seed: int = 0


def releasable(text: str) -> str:
    """The part of a partial reply that is complete sentences, safe to check and show."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return text[: ends[-1]].rstrip() if ends else ""


class CustomerTurn:
    """One streamed customer reply. Iterate for the text that may be shown so far; then read
    ``reply``.

    Every piece is checked by the character guard (``sim/guard.py``) before it is shown: the
    stream is released a sentence at a time, and a reply that breaks character (speaks as the
    agent, mentions being an AI or its instructions, leaks a locked fact, plays along with an
    off-topic request) is repaired by dropping the bad sentences, or regenerated with a
    correction. If every attempt fails, a deterministic in-character line is used.
    """

    def __init__(
        self,
        model: BaseChatModel,
        persona: Persona,
        history: Sequence[Message],
        extra_system: str = "",
        max_attempts: int = 2,
        guard: GuardContext | None = None,
    ) -> None:
        if not history or history[-1].role != "agent":
            raise ValueError("history must end with an agent message")
        self.model = model
        self.persona = persona
        self.messages = build_messages(persona, history, extra_system)
        self.max_attempts = max_attempts
        self.guard = guard or GuardContext()
        self.reply: Reply | None = None

    def check(self, text: str) -> list[Violation]:
        g = self.guard
        return check_reply(text, self.persona, g.locked, g.probe)

    def _attempt(self, messages: list[BaseMessage]) -> Generator[tuple[str, str], None, None]:
        raw = ""
        chunks, openai_stream, finished = 0, False, False
        try:
            for chunk in self.model.stream(messages):
                chunks += 1
                meta = chunk.response_metadata or {}
                openai_stream = openai_stream or meta.get("model_provider") == "openai"
                finished = finished or bool(meta.get("finish_reason"))
                raw += chunk.text
                yield raw, clean_reply(raw, self.persona.name)
        except Exception as exc:  # provider errors vary: timeouts, HTTP, runtime
            # Plain words for the trainee. Matched by class name so that no provider's
            # package (openai, httpx) has to be imported here.
            names = {c.__name__ for c in type(exc).__mro__}
            code = getattr(exc, "status_code", None)
            timeout = getattr(self.model, "request_timeout", None)
            url = getattr(self.model, "openai_api_base", None) or "its address"
            if names & {"APITimeoutError", "TimeoutException"}:
                within = f"within {timeout:g} s" if isinstance(timeout, int | float) else "in time"
                why = f"The customer model did not answer {within}."
            elif names & {"JSONDecodeError", "APIResponseValidationError"}:
                why = "The customer model sent a reply that could not be read."
            elif "RateLimitError" in names:
                why = "The customer model is busy (HTTP 429, rate limited)."
            elif isinstance(code, int) and code >= 500:
                why = f"The customer model's server failed (HTTP {code})."
            elif isinstance(code, int):
                why = f"The customer model refused the request (HTTP {code}): {str(exc)[:200]}"
            elif names & {"APIConnectionError", "TransportError"}:
                why = (
                    "The connection to the customer model dropped mid-reply."
                    if chunks
                    else f"Can't reach the customer model at {url}."
                )
            else:
                why = f"The customer model failed: {type(exc).__name__}: {exc}"
            raise SimulatorError(why) from exc
        if openai_stream and not finished:
            # An OpenAI-compatible stream always ends with a finish_reason; without one the
            # connection closed early and the text is a fragment, not a reply.
            raise SimulatorError("The customer model's reply was cut off mid-stream.")

    def _correction(self, violations: Sequence[Violation]) -> list[BaseMessage]:
        first = self.persona.name.split()[0]
        why = ", ".join(sorted({v.kind.replace("_", " ") for v in violations}))
        last = self.messages[-1]
        note = (
            f"\n(Your last reply was not acceptable ({why}). Answer again as {first}, the "
            "customer, in your own words, about your own problem only.)"
        )
        return [*self.messages[:-1], HumanMessage(str(last.content) + note)]

    def __iter__(self) -> Iterator[str]:
        result = Reply(text="")
        messages = self.messages
        for attempt in range(1, self.max_attempts + 1):
            raw, text, shown = "", "", ""
            bad: list[Violation] = []
            stream = self._attempt(messages)
            for pair in stream:
                raw, text = pair
                if agent_took_over(raw):
                    # the model went on to write the agent's lines: the customer's reply is
                    # complete, and decoding the rest would only keep this trainee (and, on
                    # a shared local model, everyone else) waiting
                    stream.close()
                    break
                ready = releasable(text)
                if len(ready) <= len(shown) or not ready.startswith(shown):
                    continue
                bad = self.check(ready)
                if bad:
                    stream.close()  # stop generating: this attempt is lost anyway
                    break
                shown = ready
                yield shown
            result.attempts.append(raw)
            if not bad:
                bad = self.check(text)
                if not bad:
                    result.text = text
                    self.reply = result
                    if text != shown:
                        yield text
                    return
            result.breaks.extend(v.kind for v in bad)
            fixed = repair(text, bad, self.persona, self.guard.locked, self.guard.probe)
            if fixed is not None and fixed.startswith(shown):
                result.interventions.append(_log(attempt, bad, "repaired"))
                result.text = fixed
                self.reply = result
                yield fixed
                return
            result.interventions.append(_log(attempt, bad, "regenerated"))
            messages = self._correction(bad)
        g = self.guard
        result.text = in_character_line(self.persona, g.probe, g.mood, g.seed)
        result.fallback = True
        result.interventions[-1]["action"] = "fallback"
        self.reply = result
        yield result.text

    def run(self) -> Reply:
        for _ in self:
            pass
        assert self.reply is not None
        return self.reply


def _log(attempt: int, violations: Sequence[Violation], action: str) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "violations": [f"{v.kind}:{v.detail}" if v.detail else v.kind for v in violations],
        "action": action,
    }
