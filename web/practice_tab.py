"""The Practice tab: its layout (:func:`practice_layout`) and its events
(:func:`wire_practice`), onto :class:`web.practice_handlers.PracticeHandlers`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gradio as gr

from sim.persona import Persona
from web.dispute_handlers import PanelParts, dispute_panel
from web.formatting import persona_choices
from web.practice_handlers import Ended, PracticeHandlers, Sent, SessionView
from web.practice_view import persona_card


@dataclass
class PracticeLayout:
    """The Practice tab's components, by name. ``session_id`` is the page's session (a
    ``gr.State``); ``disputes`` is the dispute panel under the feedback card."""

    session_id: Any
    tab: Any
    picker: Any
    card: Any
    start: Any
    private: Any
    end: Any
    hint: Any
    hint_text: Any
    assignment: Any
    start_assessment: Any
    meter: Any
    chatbot: Any
    box: Any
    send: Any
    status: Any
    feedback: Any
    disputes: PanelParts
    plot: Any
    trace_text: Any
    retry_turn: Any
    retry: Any

    @property
    def session_out(self) -> list[Any]:
        """What :class:`SessionView` fills: New session, a pick, an assessment, a retry."""
        return list(
            SessionView(
                chat=self.chatbot,
                session_id=self.session_id,
                status=self.status,
                box=self.box,
                meter=self.meter,
                feedback=self.feedback,
                plot=self.plot,
                trace_text=self.trace_text,
                retry_turn=self.retry_turn,
                retry=self.retry,
                hint=self.hint,
                hint_text=self.hint_text,
            )
        )

    @property
    def open_in(self) -> list[Any]:
        """What a customer picked (or the page opening) reads."""
        return [self.picker, self.private, self.session_id]


def practice_layout(personas: Mapping[str, Persona]) -> PracticeLayout:
    """Lay out the Practice tab (call inside the app's ``gr.Blocks``), offering ``personas``
    with the first selected."""
    choices = persona_choices(personas)
    first = next(iter(personas), None)
    session_id = gr.State("")
    with gr.Tab("Practice", id="practice") as tab:
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                picker = gr.Dropdown(
                    choices=choices, value=first, label="Customer", elem_id="persona-picker"
                )
                card = gr.Markdown(
                    persona_card(personas[first]) if first else "", elem_id="persona-card"
                )
                with gr.Row():
                    start = gr.Button(
                        "New session",
                        variant="primary",
                        elem_id="new-session",
                        scale=1,
                        min_width=110,
                    )
                    private = gr.Checkbox(
                        label="Private session",
                        value=False,
                        elem_id="private-session",
                        scale=1,
                        min_width=110,
                        container=False,
                    )
                end = gr.Button("End session", elem_id="end-session")
                hint = gr.Button("Hint", elem_id="hint")
                hint_text = gr.HTML("", elem_id="hint-text")
                with gr.Accordion("Assessments", open=False, elem_id="assessments"):
                    assignment = gr.Dropdown(
                        choices=[],
                        label="Assigned to you",
                        elem_id="assignment-picker",
                        info="An assessment has no hints and no mood meter; "
                        "feedback comes when you end it.",
                    )
                    start_assessment = gr.Button("Start assessment", elem_id="start-assessment")
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
            disputes = dispute_panel()
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
    return PracticeLayout(
        session_id=session_id,
        tab=tab,
        picker=picker,
        card=card,
        start=start,
        private=private,
        end=end,
        hint=hint,
        hint_text=hint_text,
        assignment=assignment,
        start_assessment=start_assessment,
        meter=meter,
        chatbot=chatbot,
        box=box,
        send=send,
        status=status,
        feedback=feedback,
        disputes=disputes,
        plot=plot,
        trace_text=trace_text,
        retry_turn=retry_turn,
        retry=retry,
    )


def wire_practice(practice: PracticeHandlers, ui: PracticeLayout) -> None:
    """The Practice tab's events. The Gradio API names stay as they were."""
    session_out = ui.session_out
    ui.picker.change(practice.on_pick, ui.picker, ui.card)
    # picking a customer puts their opening line in a live session (as does opening the
    # page: see the app's demo.load), so the first thing a trainee types has somewhere to go
    ui.picker.input(practice.on_open, ui.open_in, session_out)
    ui.start.click(practice.on_start, [ui.picker, ui.private], session_out, api_name="start")
    ui.private.input(practice.on_private, [ui.private, ui.session_id], ui.status)
    ui.start_assessment.click(practice.on_start_assessment, ui.assignment, session_out)
    sent = Sent(
        chat=ui.chatbot, box=ui.box, status=ui.status, meter=ui.meter, session_id=ui.session_id
    )
    send_args: dict[str, Any] = {
        "fn": practice.on_send,
        "inputs": [ui.box, ui.chatbot, ui.session_id, ui.picker, ui.private],
        "outputs": list(sent),
    }
    ui.box.submit(**send_args)
    ui.send.click(**send_args, api_name="send")
    ended = Ended(
        status=ui.status,
        box=ui.box,
        feedback=ui.feedback,
        plot=ui.plot,
        trace_text=ui.trace_text,
        retry_turn=ui.retry_turn,
        retry=ui.retry,
    )
    ui.end.click(practice.on_end, ui.session_id, list(ended), api_name="end")
    ui.retry.click(practice.on_retry, [ui.session_id, ui.retry_turn], session_out)
    ui.hint.click(practice.on_hint, ui.session_id, ui.hint_text, api_name="hint")
    ui.tab.select(practice.on_assignments, None, ui.assignment)


__all__ = ["PracticeLayout", "practice_layout", "wire_practice"]
