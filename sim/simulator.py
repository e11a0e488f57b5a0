"""Where a customer reply is generated: prompt, stream, clean, check, regenerate once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from langchain_core.language_models.chat_models import BaseChatModel

from sim.persona import Persona
from sim.postprocess import clean_reply, role_break
from sim.prompt import Message, build_messages


class SimulatorError(RuntimeError):
    """The model failed to produce a reply; the message is fit to show the trainee."""


@dataclass
class Reply:
    text: str
    attempts: list[str] = field(default_factory=list)
    breaks: list[str] = field(default_factory=list)
    fallback: bool = False

    @property
    def regenerated(self) -> bool:
        return len(self.attempts) > 1

    def meta(self) -> dict[str, object]:
        return {
            "regenerated": self.regenerated,
            "breaks": self.breaks,
            "fallback": self.fallback,
        }


def fallback_line(persona: Persona) -> str:
    """An in-character line used when both attempts broke character."""
    return f"Sorry, I'm not sure what you mean. Can we get back to my problem with {persona.scenario.product}?"


class CustomerTurn:
    """One streamed customer reply. Iterate for the cleaned text so far; then read ``reply``.

    If the finished reply breaks character it is regenerated once; if that breaks too, an
    in-character fallback line is used, so the trainee never sees an agent's or AI's words.
    """

    def __init__(
        self,
        model: BaseChatModel,
        persona: Persona,
        history: Sequence[Message],
        extra_system: str = "",
        max_attempts: int = 2,
    ) -> None:
        if not history or history[-1].role != "agent":
            raise ValueError("history must end with an agent message")
        self.model = model
        self.persona = persona
        self.messages = build_messages(persona, history, extra_system)
        self.max_attempts = max_attempts
        self.reply: Reply | None = None

    def _attempt(self) -> Iterator[tuple[str, str]]:
        raw = ""
        try:
            for chunk in self.model.stream(self.messages):
                raw += chunk.text
                yield raw, clean_reply(raw, self.persona.name)
        except Exception as exc:  # provider errors vary: timeouts, HTTP, runtime
            raise SimulatorError(f"The customer model failed: {type(exc).__name__}: {exc}") from exc

    def __iter__(self) -> Iterator[str]:
        result = Reply(text="")
        for _ in range(self.max_attempts):
            raw, text = "", ""
            for raw_so_far, text in self._attempt():
                raw = raw_so_far
                yield text
            result.attempts.append(raw)
            reason = role_break(text)
            if reason is None:
                result.text = text
                self.reply = result
                return
            result.breaks.append(reason)
        result.text = fallback_line(self.persona)
        result.fallback = True
        self.reply = result
        yield result.text

    def run(self) -> Reply:
        for _ in self:
            pass
        assert self.reply is not None
        return self.reply
