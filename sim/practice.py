"""A practice session end to end: persona + store + simulator. Used by the app and the CLI."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from sim.persona import PERSONA_DIR, Persona, load_personas
from sim.prompt import Message, build_messages
from sim.providers import get_chat_model
from sim.settings import Settings
from sim.simulator import CustomerTurn, Reply
from sim.store import Session, SessionStore


class InputRejected(ValueError):
    """The trainee's message can't be sent as it is; the message says why."""


@dataclass
class Practice:
    """Shared services for every session in a process. The chat model is built lazily."""

    settings: Settings
    store: SessionStore
    personas: dict[str, Persona]
    model_factory: Callable[[Settings], BaseChatModel] = get_chat_model

    def __post_init__(self) -> None:
        self._model: BaseChatModel | None = None
        self._model_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, persona_dir: Path = PERSONA_DIR, **kw: Any
    ) -> Practice:
        settings.ensure_dirs()
        return cls(settings, SessionStore(settings.db_path), load_personas(persona_dir), **kw)

    @property
    def model(self) -> BaseChatModel:
        with self._model_lock:
            if self._model is None:
                self._model = self.model_factory(self.settings)
            return self._model

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
        self.store.add_turn(sid, "customer", persona.opening_line, {"opening": True})
        self.prewarm(persona)
        return PracticeSession(self, sid)

    def prewarm(self, persona: Persona) -> threading.Thread | None:
        """Let a local model read the persona prompt in the background while the trainee
        reads the opening line. A no-op for models without ``warm``."""
        model = self.model
        warm = getattr(model, "warm", None)
        if warm is None:
            return None
        messages = build_messages(persona, [Message("customer", persona.opening_line)])

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

    def history(self) -> list[Message]:
        return [Message(t.role, t.text) for t in self.record.turns]

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
        if not (turns and turns[-1].role == "agent" and turns[-1].text == text):
            self.practice.store.add_turn(self.id, "agent", text)
        yield from self._reply()

    def _reply(self) -> Iterator[str]:
        turn = CustomerTurn(self.practice.model, self.persona, self.history())
        yield from turn
        reply: Reply | None = turn.reply
        assert reply is not None
        self.practice.store.add_turn(self.id, "customer", reply.text, reply.meta())

    def pending_reply(self) -> bool:
        turns = self.record.turns
        return bool(turns) and turns[-1].role == "agent"

    def end(self, status: str = "ended") -> None:
        self.practice.store.end_session(self.id, status)
