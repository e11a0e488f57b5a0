"""Where a customer reply is generated: prompt, stream, clean, guard, repair or regenerate."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage

from common.text import SENTENCE_END
from common.turns import GuardAction, GuardLog, Turn, TurnMeta
from sim import realism
from sim.guard import Probe, Violation, check_reply, in_character_line, repair
from sim.notes import correction_note
from sim.persona import HiddenFact, Persona
from sim.postprocess import agent_took_over, clean_reply
from sim.prompt import build_messages
from sim.realism import Finding, Granted, RealismContext

Problem = Violation | Finding
"""A reason a reply can't be shown as it is: the guard's (out of character) or a realism
check's (not what a person would say)."""


class SimulatorError(RuntimeError):
    """The model failed to produce a reply; the message is fit to show the trainee."""


@dataclass
class Reply:
    text: str
    attempts: list[str] = field(default_factory=list)
    breaks: list[str] = field(default_factory=list)
    fallback: bool = False
    interventions: list[GuardLog] = field(default_factory=list)

    @property
    def regenerated(self) -> bool:
        return len(self.attempts) > 1

    def meta(self) -> TurnMeta:
        """What is stored with the customer turn about how the reply was made."""
        return TurnMeta(
            regenerated=self.regenerated,
            breaks=self.breaks,
            fallback=self.fallback,
            guard=self.interventions,
        )


@dataclass(frozen=True)
class GuardContext:
    """What the character guard needs to know about this turn."""

    locked: Sequence[HiddenFact] = ()
    probe: Probe | None = None
    mood: float = 5.0
    seed: int = 0
    granted: Granted | None = None  # what the director has granted; None: thanks not checked
    realism: bool = True  # run the realism checks (sim/realism/) beside the guard


def releasable(text: str) -> str:
    """The part of a partial reply that is complete sentences, safe to check and show."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return text[: ends[-1]].rstrip() if ends else ""


class CustomerTurn:
    """One streamed customer reply. Iterate for the text that may be shown so far; then read
    ``reply``.

    Every piece is checked by the character guard (``sim/guard/``) before it is shown: the
    stream is released a sentence at a time, and a reply that breaks character (speaks as the
    agent, mentions being an AI or its instructions, leaks a locked fact, plays along with an
    off-topic request) is repaired by dropping the bad sentences, or regenerated with a
    correction. If every attempt fails, a deterministic in-character line is used.

    Beside the guard, the realism checks (``sim/realism/``) catch what a person would not
    say: third-person narration, backstory recited, a sentence or opening repeated from earlier
    in the session, an embedded instruction obeyed, thanks nobody earned, a reply too long or
    too short for the persona. Each has its repair path: drop the sentences, cut the reply at
    a sentence end, or ask again with a correction (an obeyed instruction too). A reply only
    too short or too long is kept at the last attempt.
    """

    def __init__(
        self,
        model: BaseChatModel,
        persona: Persona,
        history: Sequence[Turn],
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
        self.earlier = [m.text for m in history if m.role == "customer"]
        self.realism = RealismContext(
            persona,
            agent_text=history[-1].text,
            earlier=tuple(self.earlier),
            probe=self.guard.probe,
            granted=self.guard.granted,
        )
        self.reply: Reply | None = None

    def check(self, text: str, final: bool = True) -> list[Problem]:
        """Every reason ``text`` can't be shown: the guard's, then the realism checks'.
        ``final=False`` while the reply is still streaming."""
        g = self.guard
        found: list[Problem] = list(check_reply(text, self.persona, g.locked, g.probe))
        if g.realism:
            found += realism.check(text, self.realism, final=final)
        return found

    def _repair(self, text: str, bad: Sequence[Problem]) -> str | None:
        """The guard's repair for its violations, then the realism repair for what is left."""
        g = self.guard
        guard_bad = [v for v in bad if isinstance(v, Violation)]
        if guard_bad:
            fixed = repair(text, guard_bad, self.persona, g.locked, g.probe)
            if fixed is None or not g.realism:
                return fixed
            left = realism.check(fixed, self.realism)
        else:
            fixed, left = text, [v for v in bad if isinstance(v, Finding)]
        if not left:
            return fixed
        mended = realism.repair(fixed, left, self.realism)
        if mended is None or check_reply(mended, self.persona, g.locked, g.probe):
            return None
        return mended

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

    def _correction(self, violations: Sequence[Problem]) -> list[BaseMessage]:
        first = self.persona.name.split()[0]
        why = ", ".join(sorted({v.kind.replace("_", " ") for v in violations}))
        hint = realism.correction_hint([v.kind for v in violations if isinstance(v, Finding)])
        last = str(self.messages[-1].content)
        if any(v.kind == "obeys_instruction" for v in violations):
            said = self.realism.agent_text
            last = last.replace(f'"{said}"', f'"{realism.without_demand(said)}"', 1)
        note = correction_note(first, why, hint)
        return [*self.messages[:-1], HumanMessage(last + note)]

    def __iter__(self) -> Iterator[str]:
        result = Reply(text="")
        messages = self.messages
        obeyed = False
        for attempt in range(1, self.max_attempts + 1):
            raw, text, shown, ready = "", "", "", ""
            bad: list[Problem] = []
            cut = False  # stopped before the model finished: ``text`` ends mid-sentence
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
                bad = self.check(ready, final=False)
                if bad:
                    stream.close()  # stop generating: this attempt is lost anyway
                    cut = True
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
            # Cut short, only the complete sentences are worth keeping: the rest of ``text`` is
            # the half-word the stream had reached when the bad sentence was seen.
            whole = ready if cut else text
            fixed = self._repair(whole, bad)
            if fixed is not None and fixed.startswith(shown):
                result.interventions.append(_log(attempt, bad, "repaired"))
                result.text = fixed
                self.reply = result
                yield fixed
                return
            if attempt == self.max_attempts and all(isinstance(v, Finding) and v.soft for v in bad):
                # only too short or too long: a terse or long reply beats a stock line
                kept = ready if cut else text
                if kept.strip() and kept.startswith(shown):
                    result.interventions.append(_log(attempt, bad, "kept"))
                    result.text = kept
                    self.reply = result
                    if kept != shown:
                        yield kept
                    return
            obeyed = any(isinstance(v, Finding) and v.kind == "obeys_instruction" for v in bad)
            result.interventions.append(_log(attempt, bad, "regenerated"))
            messages = self._correction(bad)
        g = self.guard
        probe = g.probe or (Probe("injection", "dictates_reply") if obeyed else None)
        result.text = in_character_line(
            self.persona, probe, g.mood, g.seed, self.earlier, self.realism.bounds[1]
        )
        result.fallback = True
        result.interventions[-1] = result.interventions[-1].model_copy(
            update={"action": "fallback"}
        )
        self.reply = result
        yield result.text

    def run(self) -> Reply:
        for _ in self:
            pass
        assert self.reply is not None
        return self.reply


def _log(attempt: int, violations: Sequence[Problem], action: GuardAction) -> GuardLog:
    return GuardLog(
        attempt=attempt,
        violations=[f"{v.kind}:{v.detail}" if v.detail else v.kind for v in violations],
        action=action,
    )
