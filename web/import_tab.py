"""The Import tab: grade a real conversation, then practise its customer.

Anyone signed in may import a transcript of their own conversation: it is masked, graded
into the same feedback card as a practice session and saved in their History, marked as a
real conversation (``training/real_import.py``). Trainers may then press **Practise this
customer**: a draft persona is made from it (``training/persona_draft.py``) and opened in the
Persona Studio, where they finish it, run the probe check and publish it as usual.

``app.py`` builds one :class:`ImportHandlers`, lays the tab out with :func:`import_layout`
and wires it with :func:`wire_import`. Every handler resolves the acting user on the server,
so the Gradio API obeys the same rules as the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from training.persona_draft import DraftError, draft_mode, draft_persona
from training.persona_repo import RepoError
from training.real_import import import_file, is_real, summary_line
from training.transcripts import MAX_BYTES, SpeakersUnclear, TranscriptError, read_file
from training.users import PermissionDenied, User, require_view, visible_transcript
from web.access import Request, refused
from web.formatting import status_html
from web.studio_handlers import EditorView, StudioHandlers

if TYPE_CHECKING:
    from rubric.grader import Grader
    from sim.practice import Practice

FILE_TYPES = [".txt", ".csv", ".jsonl", ".json", ".ndjson"]
# After a draft is made, bring the Persona Studio's tab forward (the tabs are the app's own,
# so the page clicks its button rather than a handler selecting it).
OPEN_STUDIO_JS = """(status) => {
  if (String(status || "").includes("rp-ok")) {
    const tab = [...document.querySelectorAll('button[role="tab"]')]
      .find((b) => b.textContent.trim() === "Persona Studio");
    if (tab) tab.click();
  }
  return [];
}"""
FORMAT_CHOICES = [
    ("Work it out from the file", "auto"),
    ("Text: Speaker: message", "text"),
    ("CSV: role and text columns", "csv"),
    ("JSONL: the rapport grade format", "jsonl"),
]


class ImportHandlers:
    """The Import tab's handlers. ``who`` and ``trainer`` resolve (and check) the acting
    user; ``grader`` gives the session grader; ``studio`` opens the draft in the Studio."""

    def __init__(
        self,
        practice: Practice,
        grader: Callable[[], Grader],
        who: Callable[[Request], User],
        trainer: Callable[[Request], User],
        studio: StudioHandlers,
    ) -> None:
        self.practice = practice
        self.grader = grader
        self.who = who
        self.trainer = trainer
        self.studio = studio

    def import_transcript(
        self, file: Any, agents: Sequence[str] | None, fmt: str, request: Request = None
    ) -> tuple[Any, ...]:
        """Import the uploaded file: (status, feedback card, speaker picker, session id,
        Practise button)."""
        user = self.who(request)
        skip = gr.skip()
        hidden = gr.update(visible=False)
        if not file:
            return status_html("Choose a transcript file first.", "error"), skip, skip, "", hidden
        path = Path(str(file))
        try:
            data = read_file(path)
            found = import_file(
                self.practice.store,
                self.grader(),
                user.id,
                data,
                path.name,
                fmt or "auto",
                list(agents or []),
            )
        except SpeakersUnclear as exc:
            return (
                status_html(f"{exc}", "info"),
                "",
                gr.update(choices=exc.speakers, value=[], visible=True),
                "",
                hidden,
            )
        except TranscriptError as exc:
            return status_html(f"Not imported: {exc}", "error"), "", skip, "", hidden
        from rubric.render import about_panel, load_reliability, render_feedback

        first = found[0]
        card = render_feedback(first.feedback, first.turns, about=about_panel(load_reliability()))
        card = card.replace('id="feedback-card"', 'id="import-feedback-card"', 1)
        more = (
            f" This file held {len(found)} conversations: this is the first; open the others "
            "in History."
            if len(found) > 1
            else ""
        )
        return (
            status_html(summary_line(found) + more, "ok"),
            card,
            gr.update(visible=False),
            first.session_id,
            gr.update(visible=user.is_trainer),
        )

    def practise_customer(
        self, session_id: str, new_id: str, request: Request = None
    ) -> tuple[Any, ...]:
        """Draft a persona from an imported conversation and open it in the Studio's editor:
        the editor's outputs, then this tab's status."""
        user = self.trainer(request)
        studio = self.studio

        def failed(message: str) -> tuple[Any, ...]:
            return (*EditorView().outputs(), status_html(message, "error"))

        if not session_id:
            return failed("Import a conversation first.")
        store = self.practice.store
        try:
            rec = store.get_session(session_id)
        except KeyError:
            return failed("There is no such conversation.")
        with refused():
            require_view(user, rec)
            if not visible_transcript(user, rec):
                raise PermissionDenied("That conversation is private to its trainee.")
        if not is_real(store, session_id):
            return failed("Only an imported real conversation can become a draft persona.")
        settings = self.practice.settings
        mode = draft_mode(settings)
        try:
            model = self.practice.model if mode != "extract" else None
        except Exception:  # no model: the extracted draft needs none
            model, mode = None, "extract"
        turns = [{"role": t.role, "text": t.text} for t in rec.turns]
        try:
            draft = draft_persona(
                turns,
                rec.feedback,
                seed=rec.id,
                mode=mode,
                model=model,
                taken=studio.library.exists,
            )
        except DraftError as exc:
            return failed(f"No draft could be made: {exc}")
        pid = (new_id or "").strip() or draft.suggested_id
        try:
            studio.library.import_yaml(
                draft.yaml_text,
                pid,
                user.name or "local",
                note=f"drafted from real conversation {rec.id[:8]} ({draft.source})",
            )
        except (RepoError, ValueError) as exc:
            return failed(f"The draft was not saved: {exc}")
        editor = studio.studio_open(pid, request)
        notes = " ".join(draft.notes)
        return (
            *editor,
            status_html(
                f"Draft persona {pid} saved and opened in the Persona Studio. {notes}", "ok"
            ),
        )


@dataclass
class ImportLayout:
    """The Import tab's components, for :func:`wire_import`."""

    tab: Any
    file: Any
    fmt: Any
    agents: Any
    run: Any
    status: Any
    card: Any
    session: Any
    new_id: Any
    practise: Any
    practise_status: Any


def import_layout() -> ImportLayout:
    """The Import tab (call inside the app's Blocks, where the tab should go)."""
    with gr.Tab("Import a conversation", id="import") as tab:
        gr.Markdown(
            "### Grade a real conversation\n"
            "Upload a chat you had with a customer: plain text with `Agent:` / `Customer:` "
            "(or names) before each message, a CSV with role and text columns, or the "
            "`rapport grade` JSONL. Names, emails, phone numbers, postcodes, card and "
            "account numbers are masked before anything is saved or shown. "
            f"Up to {MAX_BYTES // 1024} KB."
        )
        with gr.Row():
            file = gr.File(
                label="Transcript",
                file_types=FILE_TYPES,
                type="filepath",
                elem_id="import-file",
                scale=3,
            )
            with gr.Column(scale=2):
                fmt = gr.Dropdown(
                    choices=FORMAT_CHOICES, value="auto", label="Format", elem_id="import-format"
                )
                agents = gr.CheckboxGroup(
                    choices=[],
                    label="Which speaker is the agent?",
                    elem_id="import-agents",
                    visible=False,
                )
                run = gr.Button("Import and grade", variant="primary", elem_id="import-run")
        status = gr.HTML("", elem_id="import-status")
        card = gr.HTML("", elem_id="import-feedback")
        session = gr.State("")
        with gr.Row(visible=True):
            new_id = gr.Textbox(
                label="Persona id for the draft (optional)",
                placeholder="left empty, one is made up",
                elem_id="import-new-id",
                scale=3,
            )
            practise = gr.Button(
                "Practise this customer", elem_id="import-practise", visible=False, scale=1
            )
        practise_status = gr.HTML("", elem_id="import-practise-status")
    return ImportLayout(
        tab, file, fmt, agents, run, status, card, session, new_id, practise, practise_status
    )


def wire_import(
    handlers: ImportHandlers,
    ui: ImportLayout,
    editor_out: Sequence[Any],
    after_draft: Callable[[Any], Any] | None = None,
) -> None:
    """The Import tab's events. ``editor_out`` are the Studio editor's outputs (as
    :class:`web.studio_handlers.StudioHandlers` returns them); ``after_draft`` chains a
    refresh (the Studio library list) onto a new draft."""
    ui.run.click(
        handlers.import_transcript,
        [ui.file, ui.agents, ui.fmt],
        [ui.status, ui.card, ui.agents, ui.session, ui.practise],
        api_name="import_transcript",
    )
    ui.file.change(
        lambda _f: (gr.update(choices=[], value=[], visible=False), ""),
        ui.file,
        [ui.agents, ui.status],
        show_progress="hidden",
    )
    event = ui.practise.click(
        handlers.practise_customer,
        [ui.session, ui.new_id],
        [*editor_out, ui.practise_status],
        api_name="practise_customer",
    )
    event.then(None, ui.practise_status, None, js=OPEN_STUDIO_JS)
    if after_draft is not None:
        after_draft(event)
