"""Run by test_crash: a practice session whose third reply streams slowly until killed."""

from __future__ import annotations

import sys
from pathlib import Path

import bootstrap
from common.settings import Settings
from providers.fake import ScriptedChatModel
from sim.persona import load_personas
from sim.practice import Practice
from storage import SessionStore


def main(data_dir: str) -> None:
    settings = Settings(data_dir=Path(data_dir), provider="fake")
    settings.ensure_dirs()
    model = ScriptedChatModel(replies=["First reply.", "Second reply."])
    practice = Practice(
        settings,
        SessionStore(settings.db_path),
        load_personas(),
        lambda s: model,
        **bootstrap.grading(),
    )
    session = practice.start("confused_energy_bill")
    print(session.id, flush=True)
    for msg in ["Hello, how can I help?", "Could you tell me the bill amount?"]:
        list(session.respond(msg))
    model.chunk_delay = 0.5
    model.enqueue(["This is slow. " * 200])  # sentences, so the guard releases them as they come
    for _ in session.respond("And when did it arrive?"):
        print("streaming", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
