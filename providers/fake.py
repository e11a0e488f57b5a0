"""A scripted fake chat model for tests: it records what it was asked and fails loudly
when its script runs out (unlike ``FakeListChatModel``, which silently loops)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr


class ScriptExhausted(RuntimeError):
    """The fake model was called more times than its script has replies."""


class ScriptedChatModel(BaseChatModel):
    """Replies with ``replies`` in order; each call is appended to ``history``.

    A reply that is an ``Exception`` instance is raised instead, to simulate faults; a
    callable one is called with the messages and its result used (a reply that depends on the
    prompt, e.g. on the director's note).
    """

    replies: list[Any] = Field(default_factory=list)
    chunk_delay: float = Field(0.0, description="Seconds to sleep before each streamed chunk.")
    _pos: int = PrivateAttr(0)
    _history: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "rapport-scripted-fake"

    @property
    def history(self) -> list[list[BaseMessage]]:
        return self._history

    def enqueue(self, replies: Sequence[Any]) -> None:
        self.replies.extend(replies)

    def _next(self, messages: list[BaseMessage]) -> str:
        self._history.append(list(messages))
        if self._pos >= len(self.replies):
            raise ScriptExhausted(
                f"ScriptedChatModel has no reply left (called {self._pos + 1} times, "
                f"script has {len(self.replies)})"
            )
        reply = self.replies[self._pos]
        self._pos += 1
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            return str(reply(messages))
        return str(reply)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self._next(messages)))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self._next(messages)
        words = text.split(" ")
        for i, word in enumerate(words):
            if self.chunk_delay:
                time.sleep(self.chunk_delay)
            piece = word if i == len(words) - 1 else word + " "
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def from_script_file(path: Path) -> ScriptedChatModel:
    """Load a JSON list of replies, for running the app or CLI on the fake provider."""
    replies = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(replies, list):
        raise ValueError(f"{path}: expected a JSON list of reply strings")
    return ScriptedChatModel(replies=[str(r) for r in replies])
