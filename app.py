"""The Gradio app: thin wiring of ``sim`` (and ``rubric``) functions into Blocks.

Every handler that returns or changes data resolves the acting user from ``gr.Request``
(``request.username``; :data:`training.users.LOCAL_USER` with sign-in off) and applies the role
checks of ``training/users.py`` on the server, because any handler can be called through the
Gradio API, not only from the page. Display helpers live in
``web/formatting.py`` and one ``web/*_view.py`` per tab; the Persona Studio's handlers in
``web/studio_handlers.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import contextlib
import html
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

import bootstrap
from common.settings import Settings
from rubric.feedback import build_feedback
from rubric.grader import Grader
from rubric.render import about_panel, load_reliability, reliability_table, render_feedback
from sim.persona import Persona, PersonaError, library_dir, load_persona_file, persona_paths
from sim.practice import (
    InputRejected,
    Practice,
    PracticeSession,
    outcome_message,
)
from sim.simulator import SimulatorError
from sim.trace import mood_meter_html, plot_trace, retry_choices, trace_list_html, trace_points
from storage import Session
from training.history import (
    HintsDisabled,
    export_session_html,
    export_session_json,
    export_session_markdown,
    export_sessions_csv,
    hint_for,
    list_history,
    progress,
    session_replay,
)
from training.persona_repo import PersonaRepo
from training.users import (
    PermissionDenied,
    UnsafeBind,
    User,
    UserError,
    UserStore,
    acting_user,
    assign,
    assignments_for,
    check_bind,
    gradio_auth,
    require_trainer,
    start_assessment,
)
from web.dispute_handlers import DisputeHandlers, dispute_panel, review_tab, session_rulings
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
from web.import_tab import ImportHandlers, import_layout, wire_import
from web.practice_view import (
    ASSESSMENT_METER,
    ChatHistory,
    as_text,
    assignment_choices,
    has_trainee_words,
    hint_html,
    to_chat,
    untouched_session,
)
from web.studio_handlers import Request, StudioHandlers
from web.studio_tab import studio_layout, wire_studio


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


@contextlib.contextmanager
def refused() -> Iterator[None]:
    """Show a role check's refusal (``PermissionDenied``) to the user as a Gradio error; an
    API caller gets the same message."""
    try:
        yield
    except PermissionDenied as exc:
        raise gr.Error(str(exc), title="Not allowed", print_exception=False) from None


def build_app(
    practice: Practice,
    grader: Grader | Callable[[], Grader],
    users: UserStore | None = None,
    repo: PersonaRepo | None = None,
) -> gr.Blocks:
    """Wire the practice, history, studio and grading functions into Blocks.

    ``grader`` may be a factory. ``users`` defaults to the accounts in the practice's store,
    ``repo`` to the persona library in ``settings.persona_dir`` (else the shipped one).
    """
    settings = practice.settings
    store = practice.store
    accounts = users if users is not None else UserStore(store)
    library = repo if repo is not None else PersonaRepo(library_dir(settings))
    _grader: list[Grader] = []

    def get_grader() -> Grader:
        if not _grader:
            _grader.append(grader if isinstance(grader, Grader) else grader())
        return _grader[0]

    def guidance() -> Any:
        try:
            return get_grader().guidance
        except Exception:  # a hint without a cited passage beats no hint
            return None

    # --- who is acting, and what they may touch ---------------------------------------------
    def who(request: Request) -> User:
        with refused():
            return acting_user(settings, accounts, getattr(request, "username", None))

    def trainer(request: Request) -> User:
        user = who(request)
        with refused():
            require_trainer(user)
        return user

    def own(user: User, session_id: str) -> Session:
        """The session, if it is the acting user's own (to continue, end, retry or hint)."""
        try:
            rec = store.get_session(session_id)
        except KeyError:
            raise gr.Error("There is no such session.", print_exception=False) from None
        if rec.user_id != user.id:
            with refused():
                raise PermissionDenied("That session belongs to someone else.")
        return rec

    def trainee_names() -> list[str]:
        return [str(u.name) for u in accounts.list_users() if u.role == "trainee"]

    def published() -> dict[str, Persona]:
        """The personas on offer now: the library's published files. New or republished ones
        join ``practice.personas``; none leave it, so older sessions still replay."""
        fresh: dict[str, Persona] = {}
        for path in persona_paths(library.root):
            try:
                p = load_persona_file(path)
            except PersonaError:
                continue
            fresh[p.id] = p
        practice.personas.update(fresh)
        return fresh

    personas = practice.personas
    choices = persona_choices(personas)
    first = next(iter(personas), None)

    # --- practice -------------------------------------------------------------------------
    def on_pick(persona_id: str) -> str:
        p = practice.personas.get(persona_id or "")
        return persona_card(p) if p else ""

    def cleared() -> tuple[Any, ...]:
        """Feedback, trace plot, trace list and the retry controls, emptied and hidden."""
        return (
            "",
            gr.update(value=None, visible=False),
            "",
            gr.update(choices=[], value=None, visible=False),
            gr.update(visible=False),
        )

    def started(session: PracticeSession, status: str, assessment: bool) -> tuple[Any, ...]:
        meter = ASSESSMENT_METER if assessment else session_meter(session)
        return (
            to_chat(practice, session.id),
            session.id,
            status,
            gr.update(interactive=True),
            meter,
            *cleared(),
            gr.update(visible=not assessment),
            "",
        )

    n_started = 12  # len(started(...)): the outputs of New session, assessments and retry

    def only_status(message: str) -> tuple[Any, ...]:
        return (gr.skip(), gr.skip(), message) + (gr.skip(),) * (n_started - 3)

    def start_note(persona_id: str, private: bool) -> str:
        name = practice.personas[persona_id].name
        note = " It is private: trainers see its scores, never your words." if private else ""
        return f"Session started with {name}. You are the agent: reply below.{note}"

    # Which session each open page shows (by gr.Request.session_hash, one per page load), so
    # that the session started when the page opens or a customer is picked, a New session
    # and a first Send that overtakes them all land in the same session. Forgotten when the
    # page closes (demo.unload). One lock: the check and the start are quick.
    pages: dict[str, str] = {}
    pages_lock = threading.RLock()
    max_pages = 10_000

    def page_of(request: Request) -> str:
        return str(getattr(request, "session_hash", None) or "")

    def show(request: Request, session_id: str) -> None:
        key = page_of(request)
        if not key:
            return
        with pages_lock:
            pages.pop(key, None)
            pages[key] = session_id
            while len(pages) > max_pages:
                pages.pop(next(iter(pages)))

    def on_unload(request: Request = None) -> None:
        with pages_lock:
            pages.pop(page_of(request), None)

    def open_session(
        user: User, persona_id: str, private: bool, request: Request
    ) -> PracticeSession:
        """A live practice session with the customer for this page: an untouched one of the
        user's (not on another page) if there is one, else a new one. Hold ``pages_lock``."""
        key = page_of(request)
        held = {sid for k, sid in pages.items() if k != key}
        sid = untouched_session(store, practice.personas[persona_id], user.id, held)
        if sid is None:
            session = practice.start(persona_id, user.id)
            if private:
                store.set_private(session.id, True)
        else:
            session = practice.resume(sid)
            store.set_private(sid, bool(private))
        show(request, session.id)
        return session

    def page_session(user: User, persona_id: str, request: Request) -> Session | None:
        """The open session this page shows with this customer, if the page's own state
        hasn't caught up with it yet (a start and a Send racing). Hold ``pages_lock``."""
        sid = pages.get(page_of(request)) if page_of(request) else None
        if not sid:
            return None
        try:
            rec = store.get_session(sid)
        except KeyError:
            return None
        if rec.user_id != user.id or rec.persona_id != persona_id or rec.status != "open":
            return None
        return rec

    def on_start(
        persona_id: str, private: bool = False, request: Request = None
    ) -> tuple[Any, ...]:
        user = who(request)
        if persona_id not in published():  # archived or never published: not on offer
            return only_status("⚠️ That customer is not available. Pick another one.")
        with pages_lock:
            session = practice.start(persona_id, user.id)
            if private:
                store.set_private(session.id, True)
            show(request, session.id)
        return started(session, start_note(persona_id, private), False)

    def on_open(
        persona_id: str, private: bool = False, session_id: str = "", request: Request = None
    ) -> tuple[Any, ...]:
        """A customer picked (or the page opened): their opening line in a live session, so
        the trainee can reply at once. A session the trainee has written in (or an
        assessment under way) is never replaced: that takes **New session**."""
        user = who(request)
        skipped = (gr.skip(),) * n_started
        if not persona_id:
            return skipped
        offered = persona_id in published()
        with pages_lock:
            current = session_id or pages.get(page_of(request), "")
            if current:
                rec = own(user, current)
                in_use = has_trainee_words(rec) or (
                    rec.status == "open" and store.session_extras(current)["mode"] == "assessment"
                )
                if in_use:
                    if rec.persona_id == persona_id:
                        return skipped
                    name = practice.personas[persona_id].name
                    now = practice.personas[rec.persona_id].name
                    busy = f"You are still talking to {now}. " if rec.status == "open" else ""
                    return only_status(f"{busy}Press **New session** to start with {name}.")
                if rec.persona_id == persona_id and rec.status == "open":
                    if current == session_id:
                        return skipped  # already on the page
                    return started(
                        practice.resume(current), start_note(persona_id, rec.private), False
                    )
            if not offered:  # archived or never published: not on offer
                return only_status("⚠️ That customer is not available. Pick another one.")
            session = open_session(user, persona_id, private, request)
        return started(session, start_note(persona_id, private), False)

    def on_page_open(
        persona_id: str, private: bool = False, session_id: str = "", request: Request = None
    ) -> tuple[Any, ...]:
        """The page opened: the selected customer's opening line in a live session, unless
        the page has one already (a pick, a New session or a Send got there first)."""
        who(request)
        with pages_lock:
            if session_id or pages.get(page_of(request)):
                return (gr.skip(),) * n_started
            return on_open(persona_id, private, session_id, request)

    def on_start_assessment(assignment_id: Any, request: Request = None) -> tuple[Any, ...]:
        user = who(request)
        if assignment_id in (None, ""):
            return only_status("Pick one of your assessments first.")
        published()
        with refused():
            try:
                session = start_assessment(practice, user, int(assignment_id))
            except KeyError:
                return only_status("⚠️ That assessment's customer is no longer available.")
        show(request, session.id)
        return started(
            session,
            f"Assessment started with {session.persona.name}: no hints and no mood meter. "
            "Your feedback appears when you end the session.",
            True,
        )

    def on_private(private: bool, session_id: str, request: Request = None) -> str:
        user = who(request)
        if not session_id:
            return gr.skip()
        own(user, session_id)
        store.set_private(session_id, bool(private))
        return (
            "This session is now private: trainers see its scores, never your words."
            if private
            else "This session is no longer private."
        )

    def on_send(
        message: str,
        chat: ChatHistory,
        session_id: str,
        persona_id: str = "",
        private: bool = False,
        request: Request = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Send the trainee's message and stream the reply. With no session on the page yet
        (the one the page starts hasn't arrived, or failed) it starts one with the picked
        customer first: what the trainee typed is sent, never dropped."""
        skip = gr.skip()
        message = message or ""
        user = who(request)
        created = not session_id
        if session_id:
            own(user, session_id)
        elif not message.strip():
            yield chat, "", "", skip, skip
            return
        elif not persona_id or persona_id not in published():
            yield chat, message, "⚠️ Pick a customer from the list, then press Send.", skip, skip
            return
        else:
            with pages_lock:
                rec = page_session(user, persona_id, request)
                session_id = rec.id if rec else open_session(user, persona_id, private, request).id
        sid = session_id
        assessment = store.session_extras(sid)["mode"] == "assessment"
        session = practice.resume(sid)
        try:
            text = session.check_message(message)
        except InputRejected as exc:
            if not message.strip():
                yield chat, "", "", skip, sid
                return
            yield to_chat(practice, sid) if created else chat, message, f"⚠️ {exc}", skip, sid
            return
        chat = to_chat(practice, sid)
        if not (chat and chat[-1]["role"] == "user" and chat[-1]["content"] == as_text(text)):
            chat.append({"role": "user", "content": as_text(text)})
        chat.append({"role": "assistant", "content": "…"})
        yield chat, "", "The customer is typing…", skip, sid
        meter: Any = skip if assessment else None  # shown once the director has decided
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
                    yield chat, "", "The customer is typing…", meter, sid
                else:
                    yield chat, "", "The customer is typing…", skip, sid
        except SimulatorError as exc:
            chat.pop()
            yield (
                chat,
                text,
                f"⚠️ {exc} Your message is saved; press Send to try again.",
                skip,
                sid,
            )
            return
        state = session.state()
        done = outcome_message(session.persona, state) if state.outcome != "open" else ""
        yield (
            to_chat(practice, sid),
            "",
            done,
            skip if assessment else session_meter(session),
            sid,
        )

    def on_end(session_id: str, request: Request = None) -> tuple[Any, ...]:
        if not session_id:
            return "No session to end.", gr.update(), gr.skip(), *(gr.skip(),) * 4
        user = who(request)
        own(user, session_id)
        assessment = store.session_extras(session_id)["mode"] == "assessment"
        practice.resume(session_id).end()
        try:
            fig, trace_text, retry = session_trace(practice, session_id)
            if assessment:
                retry = []  # an assessment is one attempt
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
        again = "" if assessment else ", or pick one of your messages below and **Retry from here**"
        return (
            f"Session ended and saved (id `{session_id}`). Press **New session** to practise "
            f"again{again}.",
            gr.update(interactive=False),
            card,
            *after,
        )

    def on_retry(
        session_id: str, agent_idx: int | None, request: Request = None
    ) -> tuple[Any, ...]:
        if not session_id or agent_idx is None:
            return only_status("Pick one of your messages to retry from.")
        user = who(request)
        own(user, session_id)
        if store.session_extras(session_id)["mode"] == "assessment":
            return only_status("⚠️ Retry is off for assessments: an assessment is one attempt.")
        try:
            session = practice.retry(session_id, int(agent_idx))
        except (InputRejected, KeyError) as exc:
            return only_status(f"⚠️ {exc}")
        show(request, session.id)
        n = sum(1 for t in session.record.turns if t.role == "agent") + 1
        return started(
            session, f"Rewound to before your message #{n}. Your original attempt is saved.", False
        )

    def on_hint(session_id: str, request: Request = None) -> str:
        user = who(request)
        if not session_id:
            return status_html("Start a session first, then ask for a hint.", "info")
        own(user, session_id)
        try:
            hint = hint_for(practice.resume(session_id), guidance())
        except HintsDisabled as exc:
            return status_html(str(exc), "error")
        return hint_html(hint)

    def on_assignments(request: Request = None) -> Any:
        user = who(request)
        found = assignments_for(store, user)
        return gr.update(
            choices=assignment_choices(found, practice.personas, user.is_trainer),
            value=found[-1].id if found else None,
        )

    # --- history ----------------------------------------------------------------------------
    def on_history(archetype: str, trainee: str, request: Request = None) -> tuple[Any, ...]:
        user = who(request)
        subject = trainee or None
        with refused():
            rows = list_history(
                store, user, or_none(archetype), personas=practice.personas, trainee=subject
            )
            data = progress(store, practice.personas, user, or_none(archetype), trainee=subject)
        summary = progress_summary(data)
        if user.is_trainer and not user.is_local and subject is None:
            summary += " Pick a trainee to see their progress (this plot is your own sessions)."
        return (
            dataframe(history_table(rows), HISTORY_HEADERS),
            gr.update(choices=history_choices(rows, user.is_trainer), value=None),
            progress_figure(data, subject),
            summary,
        )

    def on_replay(session_id: str, request: Request = None) -> tuple[Any, ...]:
        user = who(request)
        if not session_id:
            return "", "", gr.update(value=None, visible=False)
        with refused():
            try:
                rp = session_replay(store, practice.personas, user, session_id)
            except KeyError:
                raise gr.Error("There is no such session.", print_exception=False) from None
        return (
            replay_html(rp),
            replay_feedback_html(rp),
            gr.update(value=replay_figure(rp), visible=True),
        )

    def exported(session_id: str, request: Request, kind: str) -> str:
        user = who(request)
        if not session_id:
            raise gr.Error("Open a session first.", print_exception=False)
        with refused():
            try:
                if kind == "json":
                    data = export_session_json(store, user, session_id)
                    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
                elif kind == "md":
                    text = export_session_markdown(store, user, session_id, practice.personas)
                else:
                    text = export_session_html(store, user, session_id, practice.personas)
            except KeyError:
                raise gr.Error("There is no such session.", print_exception=False) from None
        return str(write_download(text, f"rapport-session-{session_id[:8]}.{kind}"))

    def export_json(session_id: str, request: Request = None) -> str:
        return exported(session_id, request, "json")

    def export_markdown(session_id: str, request: Request = None) -> str:
        return exported(session_id, request, "md")

    def export_html(session_id: str, request: Request = None) -> str:
        return exported(session_id, request, "html")

    def export_csv(request: Request = None) -> str:
        user = who(request)
        with refused():
            text = export_sessions_csv(store, user)
        return str(write_download(text, "rapport-sessions.csv"))

    def on_assign(persona_id: str, trainee: str, request: Request = None) -> tuple[Any, ...]:
        user = who(request)
        with refused():
            require_trainer(user)
            if not persona_id or persona_id not in published():
                return status_html("Pick a published customer to assign.", "error"), gr.skip()
            try:
                a = assign(store, user, persona_id, trainee or None)
            except UserError as exc:
                return status_html(str(exc), "error"), gr.skip()
        to = a.assigned_to or "every trainee"
        name = practice.personas[persona_id].name
        return (
            status_html(f"Assigned {name} to {to} as assessment #{a.id}.", "ok"),
            on_assignments(request),
        )

    # --- persona studio (web/studio_handlers.py) ----------------------------------------------
    studio = StudioHandlers(practice, library, trainer, published)
    imports = ImportHandlers(practice, get_grader, who, trainer, studio)  # web/import_tab.py

    # --- on page load: what this user sees ------------------------------------------------
    def on_load(request: Request = None) -> tuple[Any, ...]:
        user = who(request)
        offered = persona_choices(published())
        ids = [c[1] for c in offered]
        names = trainee_names() if user.is_trainer else []
        if user.is_local:
            banner = "Single-user mode (sign-in off): you can use every tab."
        else:
            banner = f"Signed in as **{user.name}** ({user.role}) · [Sign out](logout)"
        return (
            banner,
            gr.update(visible=user.is_trainer),
            gr.update(visible=user.is_trainer and bool(names), choices=trainee_choices(names)),
            gr.update(visible=user.is_trainer),
            gr.update(visible=user.is_trainer),
            gr.update(choices=offered),
            on_assignments(request),
            gr.update(choices=offered, value=ids[0] if ids else None),
            gr.update(choices=trainee_choices(names, "All trainees"), value=""),
        )

    # --- layout ---------------------------------------------------------------------------
    with gr.Blocks(title="Rapport — empathy practice") as demo:
        gr.Markdown("# Rapport\nPractise empathy with a simulated customer.")
        whoami = gr.Markdown("", elem_id="whoami")
        session_id = gr.State("")
        with gr.Tab("Practice", id="practice") as practice_tab:
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
                    hint_out = gr.HTML("", elem_id="hint-text")
                    with gr.Accordion("Assessments", open=False, elem_id="assessments"):
                        assignment = gr.Dropdown(
                            choices=[],
                            label="Assigned to you",
                            elem_id="assignment-picker",
                            info="An assessment has no hints and no mood meter; "
                            "feedback comes when you end it.",
                        )
                        start_assessment_btn = gr.Button(
                            "Start assessment", elem_id="start-assessment"
                        )
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
                dispute_parts = dispute_panel()
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

        with gr.Tab("History", id="history") as history_tab:
            with gr.Row():
                hist_archetype = gr.Dropdown(
                    choices=archetype_choices(),
                    value="",
                    label="Customer type",
                    elem_id="history-archetype",
                )
                hist_trainee = gr.Dropdown(
                    choices=trainee_choices([]),
                    value="",
                    label="Trainee",
                    elem_id="history-trainee",
                    visible=False,
                )
                hist_refresh = gr.Button("Refresh", elem_id="history-refresh", scale=0)
            hist_table = gr.Dataframe(
                value=dataframe([], HISTORY_HEADERS),
                headers=HISTORY_HEADERS,
                interactive=False,
                elem_id="history-table",
                label="Past sessions (newest first)",
            )
            progress_plot = gr.Plot(label="Progress", elem_id="progress-plot", format="png")
            progress_text = gr.Markdown("", elem_id="progress-summary")
            hist_pick = gr.Dropdown(
                choices=[],
                label="Open a session",
                elem_id="history-session",
                allow_custom_value=True,
            )
            with gr.Row():
                exp_json = gr.Button("Session JSON", elem_id="export-json", size="sm")
                exp_md = gr.Button("Markdown", elem_id="export-md", size="sm")
                exp_html = gr.Button("HTML", elem_id="export-html", size="sm")
                exp_csv = gr.Button(
                    "All sessions (CSV)", elem_id="export-csv", size="sm", visible=False
                )
            export_file = gr.File(label="Download", elem_id="export-file", interactive=False)
            replay_out = gr.HTML("", elem_id="replay")
            replay_fb = gr.HTML("", elem_id="replay-feedback")
            replay_rulings = session_rulings()
            replay_plot = gr.Plot(
                label="How the customer felt", elem_id="replay-trace", format="png", visible=False
            )
            with gr.Accordion(
                "Assign an assessment (trainers)", open=False, visible=False, elem_id="assign-box"
            ) as assign_box:
                with gr.Row():
                    assign_persona = gr.Dropdown(
                        choices=choices, value=first, label="Customer", elem_id="assign-persona"
                    )
                    assign_to = gr.Dropdown(
                        choices=trainee_choices([], "All trainees"),
                        value="",
                        label="Trainee",
                        elem_id="assign-trainee",
                    )
                    assign_btn = gr.Button("Assign as assessment", elem_id="assign")
                assign_status = gr.HTML("", elem_id="assign-status")

        import_ui = import_layout()

        studio_ui = studio_layout()

        queue_parts = review_tab()

        with gr.Tab("Reliability", id="reliability"):
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

        # --- events: practice -----------------------------------------------------------------
        after = [feedback, plot, trace_text, retry_turn, retry]
        session_out = [chatbot, session_id, status, box, meter, *after, hint, hint_out]
        assert len(session_out) == n_started
        picker.change(on_pick, picker, card)
        # picking a customer puts their opening line in a live session (as does opening the
        # page: see demo.load below), so the first thing a trainee types has somewhere to go
        picker.input(on_open, [picker, private, session_id], session_out)
        start.click(on_start, [picker, private], session_out, api_name="start")
        private.input(on_private, [private, session_id], status)
        start_assessment_btn.click(on_start_assessment, assignment, session_out)
        send_args: dict[str, Any] = {
            "fn": on_send,
            "inputs": [box, chatbot, session_id, picker, private],
            "outputs": [chatbot, box, status, meter, session_id],
        }
        box.submit(**send_args)
        send.click(**send_args, api_name="send")
        end.click(on_end, session_id, [status, box, *after], api_name="end")
        retry.click(on_retry, [session_id, retry_turn], session_out)
        hint.click(on_hint, session_id, hint_out, api_name="hint")
        practice_tab.select(on_assignments, None, assignment)

        # --- events: history --------------------------------------------------------------
        hist_out = [hist_table, hist_pick, progress_plot, progress_text]
        hist_in = [hist_archetype, hist_trainee]
        history_tab.select(on_history, hist_in, hist_out, api_name="history")
        hist_refresh.click(on_history, hist_in, hist_out)
        hist_archetype.input(on_history, hist_in, hist_out)
        hist_trainee.input(on_history, hist_in, hist_out)
        hist_pick.input(
            on_replay, hist_pick, [replay_out, replay_fb, replay_plot], api_name="replay"
        )
        exp_json.click(export_json, hist_pick, export_file, api_name="export_json")
        exp_md.click(export_markdown, hist_pick, export_file, api_name="export_markdown")
        exp_html.click(export_html, hist_pick, export_file, api_name="export_html")
        exp_csv.click(export_csv, None, export_file, api_name="export_csv")
        assign_btn.click(
            on_assign, [assign_persona, assign_to], [assign_status, assignment], api_name="assign"
        )

        # --- events: disputes and the trainers' review queue (web/dispute_handlers.py) ------
        disputes = DisputeHandlers(store, who, trainee_names)
        disputes.wire(
            demo, dispute_parts, queue_parts, session_id, feedback, hist_pick, replay_rulings
        )

        # --- events: studio (web/studio_tab.py) ---------------------------------------------
        wire_studio(studio, studio_ui, picker, assign_persona)
        # --- events: import a real conversation (web/import_tab.py) -------------------------
        wire_import(
            imports,
            import_ui,
            studio_ui.editor_out,
            lambda e: e.then(studio.studio_list, studio_ui.lib_in, studio_ui.lib_out),
        )

        demo.load(
            on_load,
            None,
            [
                whoami,
                studio_ui.tab,
                hist_trainee,
                exp_csv,
                assign_box,
                picker,
                assignment,
                assign_persona,
                assign_to,
            ],
        ).success(on_page_open, [picker, private, session_id], session_out)
        demo.unload(on_unload)
    return demo


def main(settings: Settings | None = None) -> None:
    from providers.registry import ProviderError

    settings = settings or Settings()
    try:
        check_bind(settings)  # before anything else: never serve an open bind by accident
    except UnsafeBind as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    settings.ensure_dirs()
    limit_malloc_arenas()
    from providers.local import LocalModelError

    # the director scores each turn with the same grader the feedback uses (built below)
    grader: Grader
    try:
        practice = bootstrap.open_practice(
            settings, signals_factory=lambda s: bootstrap.signals_from_grader(grader)
        )
    except PersonaError as exc:
        print(f"error: the persona library has problems:\n{exc}", file=sys.stderr)
        raise SystemExit(1) from None
    try:
        # fail at start, not half-working on the first message: load the model now
        model = practice.model
        load = getattr(model, "load", None)
        if load is not None:
            load()
    except (ProviderError, LocalModelError) as exc:
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
    users = UserStore(practice.store)
    if settings.auth and not users.list_users():
        print(
            "warning: sign-in is on but there are no accounts yet: add one with "
            "'rapport users add NAME --role trainer'",
            file=sys.stderr,
        )
    repo = PersonaRepo(library_dir(settings))
    demo = build_app(practice, grader, users=users, repo=repo)
    if settings.provider == "local" and settings.local_engine == "batched":
        # read every persona's prompt once, in the background; after the first start the
        # states come from disk and this returns at once (trainees' requests go first)
        for persona in practice.personas.values():
            practice.prewarm(persona)
    # as many replies in flight as the batched engine decodes together
    demo.queue(default_concurrency_limit=max(4, settings.local_slots))
    print(
        f"Rapport is running at http://{settings.host}:{settings.port}  "
        f"(provider: {settings.provider}, sign-in: {'on' if settings.auth else 'off'})"
    )
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        show_error=True,
        auth=gradio_auth(users) if settings.auth else None,
        auth_message="Sign in to Rapport with the account your trainer gave you.",
    )


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas. Gradio serves each request on a worker thread and
    every thread that allocates gets an arena of its own that is rarely given back: with
    several trainees at once that was hundreds of MiB of RSS (measured in bench/load.py).
    A no-op off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        return


def _judge(settings: Settings) -> Any:
    return bootstrap.judge_for(settings)


if __name__ == "__main__":
    main()
