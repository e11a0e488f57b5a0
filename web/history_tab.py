"""The History tab: past sessions, their replay and exports, progress, and (for trainers)
assigning assessments.

``app.py`` builds one :class:`HistoryHandlers`, lays the tab out with :func:`history_layout`
and wires it with :func:`wire_history`. Every handler resolves the acting user on the server
and leaves the role checks to ``training/history.py`` and ``training/users.py``, so a call
through the Gradio API gets exactly what the page gets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr

from sim.persona import Persona
from sim.practice import Practice
from training.history import (
    export_session_html,
    export_session_json,
    export_session_markdown,
    export_sessions_csv,
    list_history,
    progress,
    session_replay,
)
from training.users import UserError, assign, require_trainer
from web.access import Access, Request, refused
from web.dispute_handlers import session_rulings
from web.formatting import (
    archetype_choices,
    dataframe,
    or_none,
    persona_choices,
    status_html,
    trainee_choices,
    write_download,
)
from web.history_view import (
    HISTORY_HEADERS,
    history_choices,
    history_table,
    progress_figure,
    progress_summary,
    replay_feedback_html,
    replay_figure,
    replay_html,
)


class Listing(NamedTuple):
    """What the sessions list fills in."""

    table: Any
    pick: Any
    plot: Any
    summary: Any


class ReplayView(NamedTuple):
    """What opening one session fills in."""

    transcript: Any
    feedback: Any
    plot: Any


class HistoryHandlers:
    """The History tab's handlers. ``published`` returns the personas on offer now;
    ``assignments`` refreshes the Practice tab's assessments picker (after an assignment)."""

    def __init__(
        self,
        practice: Practice,
        access: Access,
        published: Callable[[], dict[str, Persona]],
        assignments: Callable[[Request], Any],
    ) -> None:
        self.practice = practice
        self.store = practice.store
        self.who = access.who
        self.published = published
        self.assignments = assignments

    def on_history(self, archetype: str, trainee: str, request: Request = None) -> Listing:
        user = self.who(request)
        subject = trainee or None
        personas = self.practice.personas
        with refused():
            rows = list_history(
                self.store, user, or_none(archetype), personas=personas, trainee=subject
            )
            data = progress(self.store, personas, user, or_none(archetype), trainee=subject)
        summary = progress_summary(data)
        if user.is_trainer and not user.is_local and subject is None:
            summary += " Pick a trainee to see their progress (this plot is your own sessions)."
        return Listing(
            table=dataframe(history_table(rows), HISTORY_HEADERS),
            pick=gr.update(choices=history_choices(rows, user.is_trainer), value=None),
            plot=progress_figure(data, subject),
            summary=summary,
        )

    def on_replay(self, session_id: str, request: Request = None) -> ReplayView:
        user = self.who(request)
        if not session_id:
            return ReplayView("", "", gr.update(value=None, visible=False))
        with refused():
            try:
                rp = session_replay(self.store, self.practice.personas, user, session_id)
            except KeyError:
                raise gr.Error("There is no such session.", print_exception=False) from None
        return ReplayView(
            transcript=replay_html(rp),
            feedback=replay_feedback_html(rp),
            plot=gr.update(value=replay_figure(rp), visible=True),
        )

    def _exported(self, session_id: str, request: Request, kind: str) -> str:
        user = self.who(request)
        if not session_id:
            raise gr.Error("Open a session first.", print_exception=False)
        store, personas = self.store, self.practice.personas
        with refused():
            try:
                if kind == "json":
                    data = export_session_json(store, user, session_id)
                    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
                elif kind == "md":
                    text = export_session_markdown(store, user, session_id, personas)
                else:
                    text = export_session_html(store, user, session_id, personas)
            except KeyError:
                raise gr.Error("There is no such session.", print_exception=False) from None
        return str(write_download(text, f"rapport-session-{session_id[:8]}.{kind}"))

    def export_json(self, session_id: str, request: Request = None) -> str:
        return self._exported(session_id, request, "json")

    def export_markdown(self, session_id: str, request: Request = None) -> str:
        return self._exported(session_id, request, "md")

    def export_html(self, session_id: str, request: Request = None) -> str:
        return self._exported(session_id, request, "html")

    def export_csv(self, request: Request = None) -> str:
        user = self.who(request)
        with refused():
            text = export_sessions_csv(self.store, user)
        return str(write_download(text, "rapport-sessions.csv"))

    # fills the status line and the Practice tab's assessments picker
    def on_assign(self, persona_id: str, trainee: str, request: Request = None) -> tuple[Any, Any]:
        user = self.who(request)
        with refused():
            require_trainer(user)
            if not persona_id or persona_id not in self.published():
                return status_html("Pick a published customer to assign.", "error"), gr.skip()
            try:
                a = assign(self.store, user, persona_id, trainee or None)
            except UserError as exc:
                return status_html(str(exc), "error"), gr.skip()
        to = a.assigned_to or "every trainee"
        name = self.practice.personas[persona_id].name
        return (
            status_html(f"Assigned {name} to {to} as assessment #{a.id}.", "ok"),
            self.assignments(request),
        )


@dataclass
class HistoryLayout:
    """The History tab's components, by name."""

    tab: Any
    archetype: Any
    trainee: Any
    refresh: Any
    table: Any
    progress_plot: Any
    progress_text: Any
    pick: Any
    export_json: Any
    export_md: Any
    export_html: Any
    export_csv: Any
    export_file: Any
    replay: Any
    replay_feedback: Any
    replay_rulings: Any
    replay_plot: Any
    assign_box: Any
    assign_persona: Any
    assign_to: Any
    assign: Any
    assign_status: Any


def history_layout(personas: Mapping[str, Persona]) -> HistoryLayout:
    """Lay out the History tab (call inside the app's ``gr.Blocks``); the assignment form
    offers ``personas``, the first selected."""
    first = next(iter(personas), None)
    with gr.Tab("History", id="history") as tab:
        with gr.Row():
            archetype = gr.Dropdown(
                choices=archetype_choices(),
                value="",
                label="Customer type",
                elem_id="history-archetype",
            )
            trainee = gr.Dropdown(
                choices=trainee_choices([]),
                value="",
                label="Trainee",
                elem_id="history-trainee",
                visible=False,
            )
            refresh = gr.Button("Refresh", elem_id="history-refresh", scale=0)
        table = gr.Dataframe(
            value=dataframe([], HISTORY_HEADERS),
            headers=HISTORY_HEADERS,
            interactive=False,
            elem_id="history-table",
            label="Past sessions (newest first)",
        )
        progress_plot = gr.Plot(label="Progress", elem_id="progress-plot", format="png")
        progress_text = gr.Markdown("", elem_id="progress-summary")
        pick = gr.Dropdown(
            choices=[],
            label="Open a session",
            elem_id="history-session",
            allow_custom_value=True,
        )
        with gr.Row():
            export_json = gr.Button("Session JSON", elem_id="export-json", size="sm")
            export_md = gr.Button("Markdown", elem_id="export-md", size="sm")
            export_html = gr.Button("HTML", elem_id="export-html", size="sm")
            export_csv = gr.Button(
                "All sessions (CSV)", elem_id="export-csv", size="sm", visible=False
            )
        export_file = gr.File(label="Download", elem_id="export-file", interactive=False)
        replay = gr.HTML("", elem_id="replay")
        replay_feedback = gr.HTML("", elem_id="replay-feedback")
        replay_rulings = session_rulings()
        replay_plot = gr.Plot(
            label="How the customer felt", elem_id="replay-trace", format="png", visible=False
        )
        with gr.Accordion(
            "Assign an assessment (trainers)", open=False, visible=False, elem_id="assign-box"
        ) as assign_box:
            with gr.Row():
                assign_persona = gr.Dropdown(
                    choices=persona_choices(personas),
                    value=first,
                    label="Customer",
                    elem_id="assign-persona",
                )
                assign_to = gr.Dropdown(
                    choices=trainee_choices([], "All trainees"),
                    value="",
                    label="Trainee",
                    elem_id="assign-trainee",
                )
                assign_btn = gr.Button("Assign as assessment", elem_id="assign")
            assign_status = gr.HTML("", elem_id="assign-status")
    return HistoryLayout(
        tab=tab,
        archetype=archetype,
        trainee=trainee,
        refresh=refresh,
        table=table,
        progress_plot=progress_plot,
        progress_text=progress_text,
        pick=pick,
        export_json=export_json,
        export_md=export_md,
        export_html=export_html,
        export_csv=export_csv,
        export_file=export_file,
        replay=replay,
        replay_feedback=replay_feedback,
        replay_rulings=replay_rulings,
        replay_plot=replay_plot,
        assign_box=assign_box,
        assign_persona=assign_persona,
        assign_to=assign_to,
        assign=assign_btn,
        assign_status=assign_status,
    )


def wire_history(history: HistoryHandlers, ui: HistoryLayout, assignment: Any) -> None:
    """The History tab's events; an assignment also refreshes the Practice tab's
    ``assignment`` picker. The Gradio API names stay as they were."""
    listing = list(
        Listing(table=ui.table, pick=ui.pick, plot=ui.progress_plot, summary=ui.progress_text)
    )
    filters = [ui.archetype, ui.trainee]
    ui.tab.select(history.on_history, filters, listing, api_name="history")
    ui.refresh.click(history.on_history, filters, listing)
    ui.archetype.input(history.on_history, filters, listing)
    ui.trainee.input(history.on_history, filters, listing)
    replayed = ReplayView(transcript=ui.replay, feedback=ui.replay_feedback, plot=ui.replay_plot)
    ui.pick.input(history.on_replay, ui.pick, list(replayed), api_name="replay")
    ui.export_json.click(history.export_json, ui.pick, ui.export_file, api_name="export_json")
    ui.export_md.click(history.export_markdown, ui.pick, ui.export_file, api_name="export_markdown")
    ui.export_html.click(history.export_html, ui.pick, ui.export_file, api_name="export_html")
    ui.export_csv.click(history.export_csv, None, ui.export_file, api_name="export_csv")
    ui.assign.click(
        history.on_assign,
        [ui.assign_persona, ui.assign_to],
        [ui.assign_status, assignment],
        api_name="assign",
    )


__all__ = ["HistoryHandlers", "HistoryLayout", "history_layout", "wire_history"]
