"""The Gradio app: thin wiring of ``sim`` (and ``rubric``) functions into Blocks."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import html
import sys
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from rubric.feedback import build_feedback
from rubric.grader import Grader
from rubric.render import about_panel, load_reliability, reliability_table, render_feedback
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


def grade_session(practice: Practice, grader: Grader, session_id: str) -> str:
    """Grade a finished session, save the feedback with it, and return the card's HTML."""
    rec = practice.store.get_session(session_id)
    turns = [{"role": t.role, "text": t.text} for t in rec.turns]
    feedback = build_feedback(grader, turns)
    practice.store.save_feedback(session_id, feedback.model_dump(mode="json"))
    return render_feedback(feedback, turns, about=about_panel(load_reliability()))


def build_app(practice: Practice, grader: Grader | Callable[[], Grader]) -> gr.Blocks:
    """Wire the practice and grading functions into Blocks. ``grader`` may be a factory."""
    _grader: list[Grader] = []

    def get_grader() -> Grader:
        if not _grader:
            _grader.append(grader if isinstance(grader, Grader) else grader())
        return _grader[0]

    personas = practice.personas
    choices = [
        (f"{p.name} — {p.archetype.value.replace('_', ' ')}, {p.difficulty}", p.id)
        for p in personas.values()
    ]
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

    def on_end(session_id: str) -> tuple[str, dict[str, Any], str]:
        if not session_id:
            return "No session to end.", gr.update(), ""
        practice.resume(session_id).end()
        try:
            card = grade_session(practice, get_grader(), session_id)
        except Exception as exc:  # grading must never lose the session
            return (
                f"Session saved (id `{session_id}`), but grading failed: {exc}",
                gr.update(interactive=False),
                "",
            )
        return (
            f"Session ended and saved (id `{session_id}`). Press **New session** to practise again.",
            gr.update(interactive=False),
            card,
        )

    with gr.Blocks(title="Rapport — empathy practice") as demo:
        gr.Markdown("# Rapport\nPractise empathy with a simulated customer.")
        session_id = gr.State("")
        with gr.Tab("Practice"):
            with gr.Row():
                with gr.Column(scale=1, min_width=260):
                    picker = gr.Dropdown(
                        choices=choices, value=first, label="Customer", elem_id="persona-picker"
                    )
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
            feedback = gr.HTML("", elem_id="feedback")
        with gr.Tab("Reliability"):
            rel = load_reliability()
            gr.Markdown(
                "### How far to trust each technique's verdicts\n"
                "Measured by `rapport eval` on labelled conversations the grader was not tuned on.\n\n"
                + (
                    reliability_table(rel)
                    if rel
                    else "No evaluation report yet: run `rapport eval`."
                ),
                elem_id="reliability",
            )

        picker.change(on_pick, picker, card)
        start.click(on_start, picker, [chatbot, session_id, status, box]).then(
            lambda: "", None, feedback
        )
        send_args: dict[str, Any] = {
            "fn": on_send,
            "inputs": [box, chatbot, session_id],
            "outputs": [chatbot, box, status],
        }
        box.submit(**send_args)
        send.click(**send_args)
        end.click(on_end, session_id, [status, box, feedback])
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
    try:
        grader = Grader.from_settings(settings, judge=_judge(settings))
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: the grader can't start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if grader.guidance is not None and grader.guidance.count() == 0:
        from rubric.guidance import GUIDANCE_DIR

        report = grader.guidance.ingest([GUIDANCE_DIR])
        print(f"Ingested the shipped guidance: {report.chunks_written} chunks")
    demo = build_app(practice, grader)
    demo.queue(default_concurrency_limit=4)
    print(
        f"Rapport is running at http://{settings.host}:{settings.port}  (provider: {settings.provider})"
    )
    demo.launch(server_name=settings.host, server_port=settings.port, show_error=True)


def _judge(settings: Settings) -> Any:
    from cli import _judge_for

    return _judge_for(settings)


if __name__ == "__main__":
    main()
