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
from sim.practice import (
    InputRejected,
    Practice,
    PracticeSession,
    outcome_message,
    signals_from_grader,
)
from sim.settings import Settings
from sim.simulator import SimulatorError
from sim.trace import mood_meter_html, plot_trace, retry_choices, trace_list_html, trace_points

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


def as_text(text: str) -> str:
    """Messages are shown as typed: HTML in them is text, never markup (the chat renders HTML)."""
    return html.escape(text, quote=False)


def to_chat(practice: Practice, session_id: str) -> ChatHistory:
    rec = practice.store.get_session(session_id)
    return [
        {"role": "assistant" if t.role == "customer" else "user", "content": as_text(t.text)}
        for t in rec.turns
    ]


def session_meter(session: PracticeSession) -> str:
    """The mood meter for where a session stands now: its state and its last move."""
    steps = session.steps()
    state = session.state()
    last = steps[-1][1] if steps and steps[-1][1].turn == state.turn else None
    return mood_meter_html(session.persona, state.mood, last, state)


def session_trace(practice: Practice, session_id: str) -> tuple[Any, str, list[tuple[str, int]]]:
    """After a session: the emotion trace figure, its text version and the retry choices."""
    session = practice.resume(session_id)
    rec = session.record
    persona = session.persona
    opening = next((t for t in rec.turns if "director_state" in t.meta), None)
    start = (
        float(opening.meta["director_state"]["mood"])
        if opening
        else float(persona.emotional_baseline)
    )
    points = trace_points(
        start, session.steps(), {t.idx: t.text for t in rec.turns if t.role == "agent"}
    )
    return plot_trace(persona.name, points), trace_list_html(points), retry_choices(rec.turns)


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

    def on_start(persona_id: str) -> tuple[Any, ...]:
        session = practice.start(persona_id)
        return (
            to_chat(practice, session.id),
            session.id,
            f"Session started with {personas[persona_id].name}. You are the agent: reply below.",
            gr.update(interactive=True),
            session_meter(session),
            *cleared(),
        )

    def cleared() -> tuple[Any, ...]:
        """Feedback, trace plot, trace list and the retry controls, emptied and hidden."""
        return (
            "",
            gr.update(value=None, visible=False),
            "",
            gr.update(choices=[], value=None, visible=False),
            gr.update(visible=False),
        )

    def on_send(message: str, chat: ChatHistory, session_id: str) -> Iterator[tuple[Any, ...]]:
        skip = gr.skip()
        if not session_id:
            yield chat, message, "Pick a customer and press **Start session** first.", skip
            return
        session = practice.resume(session_id)
        try:
            text = session.check_message(message)
        except InputRejected as exc:
            if not message.strip():
                yield chat, "", "", skip
                return
            yield chat, message, f"⚠️ {exc}", skip
            return
        chat = to_chat(practice, session_id)
        if not (chat and chat[-1]["role"] == "user" and chat[-1]["content"] == as_text(text)):
            chat.append({"role": "user", "content": as_text(text)})
        chat.append({"role": "assistant", "content": "…"})
        yield chat, "", "The customer is typing…", skip
        meter: Any = None  # shown once the director has decided this turn
        try:
            for partial in session.respond(text):
                chat[-1]["content"] = as_text(partial) or "…"
                if meter is None:
                    steps = session.steps()
                    meter = (
                        mood_meter_html(session.persona, steps[-1][1].mood_after, steps[-1][1])
                        if steps
                        else skip
                    )
                    yield chat, "", "The customer is typing…", meter
                else:
                    yield chat, "", "The customer is typing…", skip
        except SimulatorError as exc:
            chat.pop()
            yield chat, text, f"⚠️ {exc} Your message is saved; press Send to try again.", skip
            return
        state = session.state()
        done = outcome_message(session.persona, state) if state.outcome != "open" else ""
        yield to_chat(practice, session_id), "", done, session_meter(session)

    def on_end(session_id: str) -> tuple[Any, ...]:
        if not session_id:
            return "No session to end.", gr.update(), gr.skip(), *(gr.skip(),) * 4
        practice.resume(session_id).end()
        try:
            fig, trace_text, retry = session_trace(practice, session_id)
            after = (
                gr.update(value=fig, visible=True),
                trace_text,
                gr.update(choices=retry, value=retry[0][1] if retry else None, visible=bool(retry)),
                gr.update(visible=bool(retry)),
            )
        except Exception as exc:  # the trace is a bonus: never lose the session or the grade
            after = (
                gr.update(value=None, visible=False),
                f"(No emotion trace: {html.escape(str(exc))})",
                *cleared()[3:],
            )
        try:
            card = grade_session(practice, get_grader(), session_id)
        except Exception as exc:  # grading must never lose the session
            return (
                f"Session saved (id `{session_id}`), but grading failed: {exc}",
                gr.update(interactive=False),
                "",
                *after,
            )
        return (
            f"Session ended and saved (id `{session_id}`). Press **New session** to practise again,"
            " or pick one of your messages below and **Retry from here**.",
            gr.update(interactive=False),
            card,
            *after,
        )

    def on_retry(session_id: str, agent_idx: int | None) -> tuple[Any, ...]:
        if not session_id or agent_idx is None:
            return (
                (gr.skip(),) * 2 + ("Pick one of your messages to retry from.",) + (gr.skip(),) * 7
            )
        try:
            session = practice.retry(session_id, int(agent_idx))
        except (InputRejected, KeyError) as exc:
            return (gr.skip(),) * 2 + (f"⚠️ {exc}",) + (gr.skip(),) * 7
        n = sum(1 for t in session.record.turns if t.role == "agent") + 1
        return (
            to_chat(practice, session.id),
            session.id,
            f"Rewound to before your message #{n}. Your original attempt is saved.",
            gr.update(interactive=True),
            session_meter(session),
            *cleared(),
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
                    meter = gr.HTML(
                        '<div class="rp-meter">Start a session to see how the customer feels.</div>',
                        elem_id="mood-meter",
                    )
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
            with gr.Column(elem_id="after-session"):
                feedback = gr.HTML("", elem_id="feedback")
                plot = gr.Plot(
                    label="How the customer felt",
                    elem_id="emotion-trace",
                    format="png",
                    visible=False,
                )
                trace_text = gr.HTML("", elem_id="emotion-trace-text")
                with gr.Row():
                    retry_turn = gr.Dropdown(
                        choices=[],
                        label="Try one of your messages again",
                        elem_id="retry-turn",
                        scale=4,
                        visible=False,
                    )
                    retry = gr.Button("Retry from here", elem_id="retry", scale=1, visible=False)
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

        after = [feedback, plot, trace_text, retry_turn, retry]
        picker.change(on_pick, picker, card)
        start.click(
            on_start, picker, [chatbot, session_id, status, box, meter, *after], api_name="start"
        )
        send_args: dict[str, Any] = {
            "fn": on_send,
            "inputs": [box, chatbot, session_id],
            "outputs": [chatbot, box, status, meter],
        }
        box.submit(**send_args)
        send.click(**send_args, api_name="send")
        end.click(on_end, session_id, [status, box, *after], api_name="end")
        retry.click(
            on_retry, [session_id, retry_turn], [chatbot, session_id, status, box, meter, *after]
        )
    return demo


def main(settings: Settings | None = None) -> None:
    from sim.providers import ProviderError

    settings = settings or Settings()
    settings.ensure_dirs()
    try:
        grader = Grader.from_settings(settings, judge=_judge(settings))
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: the grader can't start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    # the director scores each turn with the same grader the feedback uses
    practice = Practice.from_settings(
        settings, signals_factory=lambda s: signals_from_grader(grader)
    )
    from sim.local_llm import LocalModelError

    try:
        model = practice.model  # fail at start, not half-working on the first message
        load = getattr(model, "load", None)
        if load is not None:
            load()
    except (ProviderError, LocalModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
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
