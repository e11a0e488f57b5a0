"""Persona Studio's handlers: trainers write, check, preview, publish and restore personas.

``app.py`` builds one :class:`StudioHandlers` and wires its ``studio_*`` methods into the
Studio tab. Each handler checks the trainer role on the server (through ``trainer``) because
it can be called through the Gradio API as well as from the page. The library itself (drafts,
versions, publishing) is ``training/persona_repo.py``; the form and table helpers are
``web/persona_form.py`` and ``web/studio_view.py``.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from sim.persona import Persona, PersonaError, parse_persona
from sim.practice import InputRejected, Practice
from sim.simulator import SimulatorError
from storage import SessionStore
from training.persona_repo import (
    ConflictError,
    PersonaRepo,
    RepoError,
    VersionInfo,
    check_id,
    normalise_text,
)
from training.users import User
from web.access import Request
from web.formatting import (
    StatusKind,
    dataframe,
    or_none,
    persona_choices,
    status_html,
    write_download,
)
from web.outputs import only
from web.persona_form import FORM_FIELDS, blank_form, form_to_yaml, problems_html, yaml_to_form
from web.practice_view import ChatHistory, to_chat
from web.studio_view import (
    LIBRARY_HEADERS,
    VERSION_HEADERS,
    can_publish,
    check_report_html,
    library_table,
    version_choices,
    versions_table,
)

MAX_IMPORT_BYTES = 256 * 1024
MAX_PREVIEWS = 64


@dataclass(frozen=True)
class EditorView:
    """What every handler that opens a persona in the editor fills in; what is not given
    is left as it is. ``form`` holds one value per :data:`FORM_FIELDS` entry."""

    id: Any = field(default_factory=gr.skip)
    base: Any = field(default_factory=gr.skip)
    form: Any = None
    yaml: Any = field(default_factory=gr.skip)
    problems: Any = field(default_factory=gr.skip)
    versions: Any = field(default_factory=gr.skip)
    version: Any = field(default_factory=gr.skip)
    status: Any = field(default_factory=gr.skip)
    check: Any = field(default_factory=gr.skip)
    publish: Any = field(default_factory=gr.skip)

    def outputs(self) -> tuple[Any, ...]:
        """The values in the order the Studio's layout lists the components in
        (``StudioLayout.editor_out`` builds that list with this method too)."""
        form = [gr.skip() for _ in FORM_FIELDS] if self.form is None else self.form
        return (
            self.id,
            self.base,
            *form,
            self.yaml,
            self.problems,
            self.versions,
            self.version,
            self.status,
            self.check,
            self.publish,
        )


class Saved(NamedTuple):
    """What Save draft fills in."""

    base: Any
    status: Any
    versions: Any
    version: Any
    problems: Any
    publish: Any


class Published(NamedTuple):
    """What Publish fills in: the Studio's controls, and the customer pickers of the
    Practice tab and the assignment form."""

    status: Any
    versions: Any
    version: Any
    publish: Any
    picker: Any
    assign_persona: Any


class StudioHandlers:
    """The Studio tab's handlers over one persona library.

    ``trainer`` resolves the acting user from the request and refuses anyone but a trainer;
    ``published`` returns the personas on offer now (and adds new ones to the practice).
    """

    def __init__(
        self,
        practice: Practice,
        library: PersonaRepo,
        trainer: Callable[[Request], User],
        published: Callable[[], dict[str, Persona]],
    ) -> None:
        self.practice = practice
        self.library = library
        self.trainer = trainer
        self.published = published
        # (id, text sha) -> the check passed, from this server only
        self._checks: dict[tuple[str, str], bool] = {}
        self._previews: OrderedDict[str, tuple[Practice, str, str | None]] = OrderedDict()
        self._preview_lock = threading.Lock()
        self._preview_store: list[SessionStore] = []

    def _author(self, user: User) -> str:
        return user.name or "local"

    def _infos_of(self, pid: str) -> list[VersionInfo]:
        try:
            return self.library.versions(pid)
        except (RepoError, ValueError):
            return []

    def _as_saved(self, pid: str, text: str) -> str:
        """The saved version's own text where ``text`` differs from it only in trailing
        whitespace: ``gr.Code`` strips that from what it shows, so an opened version comes
        back from the page without its final newline, and its check should count for it."""
        want = normalise_text(text or "").rstrip()
        for info in reversed(self._infos_of(pid) if pid and want else []):
            try:
                saved = self.library.get_version(pid, info.version)
            except (RepoError, ValueError):
                continue
            if normalise_text(saved).rstrip() == want:
                return saved
        return text

    def _passed_check(self, pid: str, version: Any) -> bool:
        if version in (None, ""):
            return False
        sha = next((i.sha for i in self._infos_of(pid) if i.version == int(version)), None)
        return sha is not None and self._checks.get((pid, sha), False)

    def _publish_button(self, pid: str, version: Any, reason: str | None) -> Any:
        ok = bool(pid) and version not in (None, "")
        return gr.update(interactive=ok and can_publish(self._passed_check(pid, version), reason))

    def studio_list(
        self, query: str, archetype: str, difficulty: str, archived: bool, request: Request = None
    ) -> tuple[Any, ...]:
        self.trainer(request)
        found = self.library.list(
            query or "", or_none(archetype), or_none(difficulty), bool(archived)
        )
        return (
            dataframe(library_table(found), LIBRARY_HEADERS),
            gr.update(choices=[(f"{s.name or s.id} ({s.id}, {s.status})", s.id) for s in found]),
        )

    def _editor(
        self, pid: str, text: str, base: str | None, message: str, kind: StatusKind = "info"
    ) -> tuple[Any, ...]:
        try:
            values = yaml_to_form(text)
        except ValueError:
            values = blank_form()
        infos = self._infos_of(pid)
        latest = infos[-1].version if infos else None
        return EditorView(
            id=pid,
            base=base,
            form=values,
            yaml=text,
            problems=problems_html(self.library.validate(text, pid), pid),
            versions=dataframe(versions_table(infos), VERSION_HEADERS),
            version=gr.update(choices=version_choices(infos), value=latest),
            status=status_html(message, kind),
            check="",
            publish=self._publish_button(pid, latest, ""),
        ).outputs()

    def _editor_status(self, message: str) -> tuple[Any, ...]:
        """Leave the editor as it is (the trainer's text included) and say why."""
        return EditorView(status=status_html(message, "error")).outputs()

    def _open_persona(self, pid: str, message: str) -> tuple[Any, ...]:
        try:
            text = self.library.get_text(pid)
            base = self.library.head_sha(pid)
        except (RepoError, ValueError) as exc:
            return self._editor_status(str(exc))
        return self._editor(pid, text, base, message)

    def studio_open(self, persona_id: str, request: Request = None) -> tuple[Any, ...]:
        self.trainer(request)
        if not persona_id:
            return self._editor_status("Pick a persona to open.")
        return self._open_persona(persona_id, f"Opened {persona_id}.")

    def studio_new(self, new_id: str, request: Request = None) -> tuple[Any, ...]:
        self.trainer(request)
        pid = (new_id or "").strip()
        try:
            check_id(pid)
            if self.library.exists(pid):
                return self._editor_status(
                    f"A persona with the id '{pid}' already exists: open it."
                )
        except (RepoError, ValueError) as exc:
            return self._editor_status(str(exc))
        text = form_to_yaml(blank_form())
        return self._editor(
            pid, text, None, f"New persona '{pid}': fill in the form, then Save draft."
        )

    def studio_clone(
        self, persona_id: str, new_id: str, request: Request = None
    ) -> tuple[Any, ...]:
        user = self.trainer(request)
        if not persona_id:
            return self._editor_status("Open the persona to clone first.")
        try:
            self.library.clone(persona_id, (new_id or "").strip(), self._author(user))
        except PersonaError as exc:
            return self._editor_status(f"{persona_id} can't be cloned until it is valid: {exc}")
        except (RepoError, ValueError) as exc:
            return self._editor_status(str(exc))
        return self._open_persona(
            new_id.strip(), f"Cloned {persona_id} as {new_id.strip()} (a draft)."
        )

    def studio_archive(self, persona_id: str, request: Request = None) -> tuple[Any, ...]:
        self.trainer(request)
        if not persona_id:
            return status_html("Open the persona to archive first.", "error"), gr.skip()
        try:
            self.library.archive(persona_id)
        except (RepoError, ValueError) as exc:
            return status_html(str(exc), "error"), gr.skip()
        return (
            status_html(f"Archived {persona_id}: trainees are no longer offered it.", "ok"),
            gr.update(choices=persona_choices(self.published())),
        )

    def studio_form_to_yaml(
        self, request: Request, persona_id: str, *values: Any
    ) -> tuple[str, str]:
        """Form -> YAML (``request`` comes first here: the form's values are variadic)."""
        self.trainer(request)
        text = form_to_yaml(values)
        return text, problems_html(self.library.validate(text, persona_id or ""), persona_id or "")

    def studio_yaml_to_form(
        self, persona_id: str, text: str, request: Request = None
    ) -> tuple[Any, ...]:
        self.trainer(request)
        problems = problems_html(
            self.library.validate(text or "", persona_id or ""), persona_id or ""
        )
        try:
            values = yaml_to_form(text or "")
        except ValueError:
            return (*[gr.skip()] * len(FORM_FIELDS), problems)
        return (*values, problems)

    def studio_save(
        self,
        persona_id: str,
        text: str,
        base: str | None,
        note: str,
        reason: str,
        request: Request = None,
    ) -> Saved:
        user = self.trainer(request)
        if not persona_id:
            return only(Saved, status=status_html("Press New or open a persona first.", "error"))
        try:
            info = self.library.save_draft(
                persona_id, text or "", self._author(user), base or None, note or ""
            )
        except ConflictError as exc:
            msg = f"{exc} Your text is still in the editor: copy it before you reopen."
            return only(Saved, status=status_html(msg, "error"))
        except PersonaError as exc:
            return only(
                Saved,
                status=status_html("Not saved: fix the problems below first.", "error"),
                problems=problems_html(exc.problems, persona_id),
            )
        except (RepoError, ValueError) as exc:
            return only(Saved, status=status_html(str(exc), "error"))
        infos = self._infos_of(persona_id)
        return Saved(
            base=info.sha,
            status=status_html(
                f"Saved {persona_id} v{info.version} (a draft: publish to use it).", "ok"
            ),
            versions=dataframe(versions_table(infos), VERSION_HEADERS),
            version=gr.update(choices=version_choices(infos), value=info.version),
            problems=problems_html([], persona_id),
            publish=self._publish_button(persona_id, info.version, reason),
        )

    def _parsed(self, persona_id: str, text: str) -> Persona:
        problems = self.library.validate(text or "", persona_id or "")
        if problems:
            raise PersonaError(problems)
        return parse_persona(normalise_text(text), persona_id, f"{persona_id}.yaml")

    def studio_check(
        self, persona_id: str, text: str, version: Any, reason: str, request: Request = None
    ) -> tuple[Any, ...]:
        self.trainer(request)
        from sim.probe_check import check_draft

        text = self._as_saved(persona_id, text)
        try:
            persona = self._parsed(persona_id, text)
        except PersonaError as exc:
            return problems_html(exc.problems, persona_id or ""), gr.skip(), gr.skip()
        try:
            report = check_draft(self.practice, persona)
        except Exception as exc:  # a model failure is not a failed check
            return "", gr.skip(), status_html(f"The check could not run: {exc}", "error")
        self._checks[(persona_id, report.persona_version)] = report.passed
        saved = any(i.sha == report.persona_version for i in self._infos_of(persona_id))
        note = "" if saved else " This text isn't saved yet: Save draft, then publish."
        return (
            check_report_html(report),
            self._publish_button(persona_id, version, reason),
            status_html(
                ("Check passed." if report.passed else "Check failed.") + note,
                "ok" if report.passed else "error",
            ),
        )

    def studio_publish_state(
        self, persona_id: str, version: Any, reason: str, request: Request = None
    ) -> Any:
        self.trainer(request)
        return self._publish_button(persona_id, version, reason)

    def studio_publish(
        self, persona_id: str, version: Any, reason: str, request: Request = None
    ) -> Published:
        user = self.trainer(request)
        if not persona_id or version in (None, ""):
            message = "Save a draft, then pick the version to publish."
            return only(Published, status=status_html(message, "error"))
        passed = self._passed_check(persona_id, version)
        try:
            info = self.library.publish(
                persona_id, int(version), self._author(user), passed, None if passed else reason
            )
        except PersonaError as exc:
            return only(Published, status=status_html(f"Not published: {exc}", "error"))
        except (RepoError, ValueError) as exc:
            return only(Published, status=status_html(str(exc), "error"))
        infos = self._infos_of(persona_id)
        why = "its check passed" if passed else f"override: {info.override_reason}"
        offered = persona_choices(self.published())
        return Published(
            status=status_html(f"Published {persona_id} v{info.version} ({why}).", "ok"),
            versions=dataframe(versions_table(infos), VERSION_HEADERS),
            version=gr.update(choices=version_choices(infos), value=info.version),
            publish=self._publish_button(persona_id, info.version, reason),
            picker=gr.update(choices=offered),
            assign_persona=gr.update(choices=offered),
        )

    def studio_restore(
        self, persona_id: str, version: Any, request: Request = None
    ) -> tuple[Any, ...]:
        user = self.trainer(request)
        if not persona_id or version in (None, ""):
            return self._editor_status("Pick a version to restore.")
        try:
            info = self.library.restore(persona_id, int(version), self._author(user))
        except (RepoError, ValueError) as exc:
            return self._editor_status(str(exc))
        return self._open_persona(persona_id, f"Restored v{version} as v{info.version} (a draft).")

    def studio_import(self, file: Any, new_id: str, request: Request = None) -> tuple[Any, ...]:
        user = self.trainer(request)
        if not file:
            return self._editor_status("Choose a YAML file to import.")
        path = Path(str(file))
        pid = (new_id or "").strip() or path.stem.lower().replace(" ", "_")
        try:
            if path.stat().st_size > MAX_IMPORT_BYTES:
                return self._editor_status(f"That file is over {MAX_IMPORT_BYTES // 1024} KB.")
            text = path.read_text(encoding="utf-8")
            self.library.import_yaml(
                text, pid, self._author(user), note=f"imported from {path.name}"
            )
        except PersonaError as exc:
            return self._editor_status(f"Not imported: {exc}")
        except (RepoError, ValueError, OSError) as exc:
            return self._editor_status(f"Not imported: {exc}")
        return self._open_persona(pid, f"Imported {path.name} as {pid} (a draft).")

    def studio_export(self, persona_id: str, version: Any, request: Request = None) -> str:
        self.trainer(request)
        if not persona_id:
            raise gr.Error("Open a persona first.", print_exception=False)
        try:
            text = self.library.export_yaml(
                persona_id, None if version in (None, "") else int(version)
            )
        except (RepoError, ValueError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        return str(write_download(text, f"{persona_id}.yaml"))

    def _sibling(self, persona: Persona) -> Practice:
        """A Practice that knows only the draft, sharing the app's model, grader and rule
        matcher, writing to a separate preview store (previews stay out of history)."""
        with self._preview_lock:
            if not self._preview_store:
                self._preview_store.append(
                    SessionStore(self.practice.settings.data_dir / "studio-preview.sqlite3")
                )
        return Practice(
            self.practice.settings,
            self._preview_store[0],
            {persona.id: persona},
            model_factory=lambda _: self.practice.model,
            signals_factory=lambda _: self.practice.signals,
            matcher_factory=lambda _: self.practice.director(persona).matcher,
        )

    def studio_preview_start(
        self, persona_id: str, text: str, request: Request = None
    ) -> tuple[Any, ...]:
        user = self.trainer(request)
        try:
            persona = self._parsed(persona_id, text)
        except PersonaError as exc:
            return [], "", problems_html(exc.problems, persona_id or "")
        preview = self._sibling(persona)
        session = preview.start(persona.id, user.id)
        token = uuid.uuid4().hex
        with self._preview_lock:
            self._previews[token] = (preview, session.id, user.id)
            while len(self._previews) > MAX_PREVIEWS:
                self._previews.popitem(last=False)
        return (
            to_chat(preview, session.id),
            token,
            status_html("Preview of this text started: reply as the agent.", "info"),
        )

    def studio_preview_send(
        self, message: str, chat: ChatHistory, token: str, request: Request = None
    ) -> tuple[Any, ...]:
        user = self.trainer(request)
        with self._preview_lock:
            entry = self._previews.get(token or "")
        if entry is None or entry[2] != user.id:
            return chat, message, status_html("Press Start preview first.", "error")
        preview, sid, _ = entry
        session = preview.resume(sid)
        try:
            text = session.check_message(message or "")
            for _ in session.respond(text):
                pass
        except (InputRejected, SimulatorError) as exc:
            return to_chat(preview, sid), message, status_html(str(exc), "error")
        state = session.state()
        return (
            to_chat(preview, sid),
            "",
            status_html(f"Distress now {state.mood:.1f} / 10 · outcome: {state.outcome}", "info"),
        )
