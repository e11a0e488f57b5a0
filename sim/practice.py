"""A practice session end to end: persona + store + simulator. Used by the app and the CLI."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from common.settings import Settings
from common.turns import Turn, TurnMeta
from providers.registry import get_chat_model
from sim.director import Director, DirectorState, RuleMatcher, Signals, Step, directive
from sim.guard import detect_probe, probe_directive
from sim.persona import Persona, library_dir, load_personas
from sim.prompt import build_messages
from sim.realism import Granted
from sim.simulator import CustomerTurn, GuardContext, Reply
from storage import Session, SessionStore, StoredTurn, open_store

SignalsFn = Callable[[str, str], Signals]
"""Grades one agent turn (agent text, the customer's previous words) for the director."""


def outcome_message(persona: Persona, state: DirectorState) -> str:
    first = persona.name.split()[0]
    if state.exit == "accepted":
        return f"{first} accepted what you offered and the conversation is over. End the session to see your feedback."
    if state.exit == "manager":
        return f"{first} has asked for a manager and won't go on with you. End the session to see your feedback."
    return f"{first} has given up and left the chat. End the session to see your feedback."


class InputRejected(ValueError):
    """The trainee's message can't be sent as it is; the message says why."""


@dataclass
class Practice:
    """Shared services for every session in a process. The chat model is built lazily.

    How the director scores an agent turn (``signals_factory``) and matches the persona's
    rules (``matcher_factory``) is given, not chosen here: the composition root
    (``bootstrap.grading()``) wires in the grader, tests a stand-in.
    """

    settings: Settings
    store: SessionStore
    personas: dict[str, Persona]
    model_factory: Callable[[Settings], BaseChatModel] = get_chat_model
    signals_factory: Callable[[Settings], SignalsFn] = field(kw_only=True)
    matcher_factory: Callable[[Settings], RuleMatcher] = field(kw_only=True)

    def __post_init__(self) -> None:
        self._model: BaseChatModel | None = None
        self._signals: SignalsFn | None = None
        self._matcher: RuleMatcher | None = None
        self._model_lock = threading.Lock()
        self._grade_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, persona_dir: Path | None = None, **kw: Any
    ) -> Practice:
        """``persona_dir`` defaults to ``settings.persona_dir``, else the shipped library;
        ``kw`` must give ``signals_factory`` and ``matcher_factory``."""
        settings.ensure_dirs()
        folder = persona_dir or library_dir(settings)
        return cls(settings, open_store(settings), load_personas(folder), **kw)

    @property
    def model(self) -> BaseChatModel:
        with self._model_lock:
            if self._model is None:
                self._model = self.model_factory(self.settings)
            return self._model

    @property
    def signals(self) -> SignalsFn:
        with self._grade_lock:
            if self._signals is None:
                self._signals = self.signals_factory(self.settings)
            return self._signals

    def director(self, persona: Persona) -> Director:
        with self._grade_lock:
            if self._matcher is None:
                self._matcher = self.matcher_factory(self.settings)
            matcher = self._matcher
        return Director(persona, matcher=matcher)

    def model_info(self) -> dict[str, Any]:
        s = self.settings
        return {
            "provider": s.provider,
            "model": s.model,
            "base_url": s.base_url,
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
        }

    def start(self, persona_id: str, user_id: str | None = None) -> PracticeSession:
        persona = self.personas[persona_id]
        sid = self.store.create_session(persona.id, persona.version, self.model_info(), user_id)
        state = self.director(persona).start()
        self.store.add_turn(
            sid,
            "customer",
            persona.opening_line,
            TurnMeta(opening=True, director_state=state.model_dump(mode="json")),
        )
        self.prewarm(persona)
        return PracticeSession(self, sid)

    def retry(self, session_id: str, agent_idx: int) -> PracticeSession:
        """Retry from here: a new session rewound to just before agent turn ``agent_idx``,
        director state included. The original session is kept as it was."""
        rec = self.store.get_session(session_id)
        if not 0 < agent_idx < len(rec.turns) or rec.turns[agent_idx].role != "agent":
            raise InputRejected(f"Turn {agent_idx} is not one of your messages in that session.")
        sid = self.store.branch_session(session_id, agent_idx)
        session = PracticeSession(self, sid)
        self.prewarm(session.persona, session.history())
        return session

    def prewarm(
        self, persona: Persona, history: list[Turn] | None = None
    ) -> threading.Thread | None:
        """Let a local model read the persona prompt in the background while the trainee
        reads the opening line. A no-op for models without ``warm``."""
        model = self.model
        warm = getattr(model, "warm", None)
        if warm is None:
            return None
        messages = build_messages(persona, history or [Turn("customer", persona.opening_line)])

        def run() -> None:
            # warming is an optimisation; the real reply reports any error
            with contextlib.suppress(Exception):
                warm(messages)

        t = threading.Thread(target=run, name=f"prewarm-{persona.id}", daemon=True)
        t.start()
        return t

    def resume(self, session_id: str) -> PracticeSession:
        self.store.get_session(session_id)  # raises KeyError if unknown
        return PracticeSession(self, session_id)


def _history(turns: Sequence[StoredTurn]) -> list[Turn]:
    """Stored turns as the simulator's history, each agent turn with its director's note."""
    return [t.turn() for t in turns]


class PracticeSession:
    """One conversation. Every turn is committed to the store before the next reply starts."""

    def __init__(self, practice: Practice, session_id: str) -> None:
        self.practice = practice
        self.id = session_id

    @property
    def record(self) -> Session:
        return self.practice.store.get_session(self.id)

    @property
    def persona(self) -> Persona:
        return self.practice.personas[self.record.persona_id]

    def history(self) -> list[Turn]:
        return _history(self.record.turns)

    def state(self) -> DirectorState:
        """The director's state after the last customer turn."""
        for t in reversed(self.record.turns):
            if t.role == "customer" and (saved := t.turn().meta.director_state) is not None:
                return DirectorState.model_validate(saved)
        return self.practice.director(self.persona).start()

    def steps(self) -> list[tuple[int, Step]]:
        """Each directed agent turn's index and the director's step for it."""
        steps = [(t.idx, t.turn().meta.step) for t in self.record.turns if t.role == "agent"]
        return [(idx, Step.model_validate(step)) for idx, step in steps if step is not None]

    def check_message(self, text: str) -> str:
        """Normalise and validate a trainee message; raise :class:`InputRejected`."""
        s = self.practice.settings
        text = text.strip()
        if not text:
            raise InputRejected("Type a message first.")
        if len(text) > s.max_message_chars:
            raise InputRejected(
                f"That message is {len(text)} characters; the limit is {s.max_message_chars}. "
                "Shorten it and send again."
            )
        rec = self.record
        if rec.status != "open":
            raise InputRejected("This session has ended. Start a new session to keep practising.")
        if rec.outcome and rec.outcome != "open":
            raise InputRejected(outcome_message(self.persona, self.state()))
        agent_turns = sum(1 for t in rec.turns if t.role == "agent")
        if agent_turns >= s.max_turns:
            raise InputRejected(
                f"This session reached its limit of {s.max_turns} agent turns. End it to get feedback."
            )
        return text

    def respond(self, text: str) -> Iterator[str]:
        """Commit the agent's message, then stream the customer's reply and commit it.

        If the previous reply failed, sending the same text again retries the reply without
        storing a duplicate agent turn.
        """
        text = self.check_message(text)
        turns = self.record.turns
        if turns and turns[-1].role == "agent" and turns[-1].text == text:
            agent = turns[-1]
        else:
            agent = self.practice.store.add_turn(self.id, "agent", text)
        decided = agent.turn().meta.step  # set on a resend: the director decided this turn
        step = self.direct(text) if decided is None else Step.model_validate(decided)
        yield from self._reply(step, text)

    def direct(self, text: str) -> Step:
        """Grade the agent's turn, let the director decide, and store both with the turn."""
        persona = self.persona
        turns = self.record.turns
        customer = next((t.text for t in reversed(turns[:-1]) if t.role == "customer"), "")
        try:
            signals = self.practice.signals(text, customer)
            note = None
        except Exception as exc:  # grading must not block the conversation
            signals, note = Signals(), f"not scored: {type(exc).__name__}: {exc}"
        director = self.practice.director(persona)
        probe = detect_probe(text)
        state = self.state()
        step = director.step(state, text, signals, probe.kind if probe else None)
        facts = {f.id: f.fact for f in persona.hidden_facts}
        unlocked = {fid: facts[fid] for fid in step.unlocked}
        probe_line = probe_directive(persona, probe) if probe else None
        note_for_actor = directive(persona, step, unlocked, probe_line)
        # When this turn's prompt is the first to leave out more of the oldest turns (to fit a
        # local model's context), the facts told in them are restated once, in this note.
        history = _history(turns)
        before = max(
            (t.meta.context_cut or 0 for t in history[:-1] if t.role == "agent"), default=0
        )
        cut = self._context_cut(persona, history, note_for_actor)
        told = [facts[fid] for fid in state.unlocked if fid in facts]
        if cut > before and told:
            note_for_actor = directive(persona, step, unlocked, probe_line, told=told)
            cut = self._context_cut(persona, history, note_for_actor)
        meta = TurnMeta(
            step=step.model_dump(mode="json"),
            signals=signals.as_dict(),
            directive=note_for_actor,
            # for traces and reports: which behaviours this reply was to show
            behaviours=[c.kind for c in step.behaviours] or None,
            context_cut=cut or None,
            grading_note=note or None,
        )
        self.practice.store.update_turn_meta(self.id, turns[-1].idx, meta)
        return step

    def _context_cut(self, persona: Persona, history: list[Turn], note: str) -> int:
        """How many of the oldest messages the model would leave out of the next prompt, with
        ``note`` on the last agent message (models with a ``dropped_for`` method: the embedded
        one); 0 if none or unknown."""
        dropped_for = getattr(self.practice.model, "dropped_for", None)
        if dropped_for is None:
            return 0
        last = Turn("agent", history[-1].text, TurnMeta(directive=note))
        try:
            return int(dropped_for(build_messages(persona, [*history[:-1], last])))
        except Exception:  # only an optimisation for long chats; the reply reports real errors
            return 0

    def _reply(self, step: Step, agent_text: str) -> Iterator[str]:
        director = self.practice.director(self.persona)
        guard = GuardContext(
            locked=director.locked_facts(step.state),
            probe=detect_probe(agent_text),
            mood=step.mood_after,
            seed=step.turn,
            granted=Granted.from_step(step),
        )
        turn = CustomerTurn(self.practice.model, self.persona, self.history(), guard=guard)
        yield from turn
        reply: Reply | None = turn.reply
        assert reply is not None
        meta = reply.meta().model_copy(
            update={"director_state": step.state.model_dump(mode="json")}
        )
        self.practice.store.add_turn(self.id, "customer", reply.text, meta)
        if step.outcome != "open":
            self.practice.store.set_outcome(self.id, step.outcome)

    def pending_reply(self) -> bool:
        turns = self.record.turns
        return bool(turns) and turns[-1].role == "agent"

    def end(self, status: str = "ended") -> None:
        self.practice.store.end_session(self.id, status)
