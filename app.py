"""The Gradio app: thin wiring of ``sim`` (and ``rubric``) functions into Blocks."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import html
import sys
from collections.abc import Iterator
from typing import Any

import gradio as gr

from sim.persona import Persona
from sim.practice import InputRejected, Practice
from sim.settings import Settings
from sim.simulator import SimulatorError

ChatHistory = list[dict[str, str]]


def persona_card(p: Persona) -> str:
    """What the trainee sees before they start: never the hidden facts."""
    s = p.scenario
    return (
        f"### {html.escape(p.name)} · {html.escape(s.company)}\n"
        f"**Situation:** {html.escape(s.problem)}  \n"
        f"**Product:** {html.escape(s.product)} · **Channel:** {s.channel} · "
        f"**Difficulty:** {p.difficulty} · **Mood:** {p.archetype.value.replace('_', ' ')}\n\n"
        f"**What you know:** {html.escape(p.trainee_brief)}"
    )


def to_chat(practice: Practice, session_id: str) -> ChatHistory:
    rec = practice.store.get_session(session_id)
    return [
        {"role": "assistant" if t.role == "customer" else "user", "content": t.text}
        for t in rec.turns
    ]


def build_app(practice: Practice) -> gr.Blocks:
    personas = practice.personas
    choices = [(f"{p.name} — {p.archetype.value.replace('_', ' ')}, {p.difficulty}", p.id) for p in personas.values()]
    first = next(iter(personas))

    def on_pick(persona_id: str) -> str:
        return persona_card(personas[persona_id])

    def on_start(persona_id: str) -> tuple[ChatHistory, str, str, dict[str, Any]]:
        session = practice.start(persona_id)
        return (
            to_chat(practice, session.id),
            session.id,
            f"Session started with {personas[persona_id].name}. You are the agent: reply below.",
            gr.update(interactive=True),
        )

    def on_send(
        message: str, chat: ChatHistory, session_id: str
    ) -> Iterator[tuple[ChatHistory, str, str]]:
        if not session_id:
            yield chat, message, "Pick a customer and press **Start session** first."
            return
        session = practice.resume(session_id)
        try:
            text = session.check_message(message)
        except InputRejected as exc:
            if not message.strip():
                yield chat, "", ""
                return
            yield chat, message, f"⚠️ {exc}"
            return
        chat = to_chat(practice, session_id)
        if not (chat and chat[-1]["role"] == "user" and chat[-1]["content"] == text):
            chat.append({"role": "user", "content": text})
        chat.append({"role": "assistant", "content": "…"})
        yield chat, "", "The customer is typing…"
        try:
            for partial in session.respond(text):
                chat[-1]["content"] = partial or "…"
                yield chat, "", "The customer is typing…"
        except SimulatorError as exc:
            chat.pop()
            yield chat, text, f"⚠️ {exc} Your message is saved; press Send to try again."
            return
        yield to_chat(practice, session_id), "", ""

    def on_end(session_id: str) -> tuple[str, dict[str, Any]]:
        if not session_id:
            return "No session to end.", gr.update()
        practice.resume(session_id).end()
        return (
            f"Session ended and saved (id `{session_id}`). Press **New session** to practise again.",
            gr.update(interactive=False),
        )

    with gr.Blocks(title="Rapport — empathy practice") as demo:
        gr.Markdown("# Rapport\nPractise empathy with a simulated customer.")
        session_id = gr.State("")
        with gr.Tab("Practice"):
            with gr.Row():
                with gr.Column(scale=1, min_width=260):
                    picker = gr.Dropdown(choices=choices, value=first, label="Customer", elem_id="persona-picker")
                    card = gr.Markdown(persona_card(personas[first]), elem_id="persona-card")
                    start = gr.Button("New session", variant="primary", elem_id="new-session")
                    end = gr.Button("End session", elem_id="end-session")
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Conversation", elem_id="chat", height=460)
                    with gr.Row():
                        box = gr.Textbox(
                            placeholder="Reply to the customer…",
                            show_label=False,
                            scale=5,
                            elem_id="message",
                            max_lines=6,
                        )
                        send = gr.Button("Send", scale=1, elem_id="send")
                    status = gr.Markdown("", elem_id="status")

        picker.change(on_pick, picker, card)
        start.click(on_start, picker, [chatbot, session_id, status, box])
        send_args: dict[str, Any] = {
            "fn": on_send,
            "inputs": [box, chatbot, session_id],
            "outputs": [chatbot, box, status],
        }
        box.submit(**send_args)
        send.click(**send_args)
        end.click(on_end, session_id, [status, box])
    return demo


def main(settings: Settings | None = None) -> None:
    from sim.providers import ProviderError

    settings = settings or Settings()
    practice = Practice.from_settings(settings)
    try:
        _ = practice.model  # fail at start, not half-working on the first message
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    demo = build_app(practice)
    demo.queue(default_concurrency_limit=4)
    print(f"Rapport is running at http://{settings.host}:{settings.port}  (provider: {settings.provider})")
    demo.launch(server_name=settings.host, server_port=settings.port, show_error=True)


if __name__ == "__main__":
    main()
