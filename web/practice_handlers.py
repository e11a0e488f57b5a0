"""The Practice tab's handlers: start a session with a customer, send, end, retry, hints and
assessments.

``app.py`` builds one :class:`PracticeHandlers`; ``web/practice_tab.py`` lays the tab out and
wires these methods. Each handler resolves the acting user on the server (``web/access.py``)
because it can be called through the Gradio API as well as from the page. What a handler
fills is a named record (:class:`SessionView`, :class:`Sent`, :class:`Ended`); the tab builds
each event's outputs from the same record.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import gradio as gr

from rubric.grader import Grader
from sim.persona import Persona
from sim.practice import InputRejected, Practice, PracticeSession, outcome_message
from sim.simulator import SimulatorError
from sim.trace import mood_meter_html
from storage import Session
from training.history import HintsDisabled, hint_for
from training.users import User, assignments_for, start_assessment
from web.access import Access, Request, refused
from web.formatting import status_html
from web.outputs import only
from web.practice_view import (
    ASSESSMENT_METER,
    ChatHistory,
    as_text,
    assignment_choices,
    grade_session,
    has_trainee_words,
    hint_html,
    persona_card,
    session_meter,
    session_trace,
    to_chat,
    untouched_session,
)

MAX_PAGES = 10_000
"""How many open pages the server remembers the session of."""


class SessionView(NamedTuple):
    """What New session, a customer picked, an assessment and a retry fill in."""

    chat: Any
    session_id: Any
    status: Any
    box: Any
    meter: Any
    feedback: Any
    plot: Any
    trace_text: Any
    retry_turn: Any
    retry: Any
    hint: Any
    hint_text: Any


class Sent(NamedTuple):
    """What each step of a Send fills in."""

    chat: Any
    box: Any
    status: Any
    meter: Any
    session_id: Any


class Ended(NamedTuple):
    """What End session fills in."""

    status: Any
    box: Any
    feedback: Any
    plot: Any
    trace_text: Any
    retry_turn: Any
    retry: Any


def cleared() -> dict[str, Any]:
    """Feedback, trace plot, trace list and the retry controls, emptied and hidden."""
    return {
        "feedback": "",
        "plot": gr.update(value=None, visible=False),
        "trace_text": "",
        "retry_turn": gr.update(choices=[], value=None, visible=False),
        "retry": gr.update(visible=False),
    }


def only_status(message: str) -> SessionView:
    """Say ``message`` and leave the rest of the tab as it is."""
    return only(SessionView, status=message)


class PracticeHandlers:
    """The Practice tab's handlers over one practice.

    ``published`` returns the personas on offer now; ``grader`` builds (once) the grader
    that grades a session when it ends; ``guidance`` is the guidance hints cite, if any.
    """

    def __init__(
        self,
        practice: Practice,
        access: Access,
        published: Callable[[], dict[str, Persona]],
        grader: Callable[[], Grader],
        guidance: Callable[[], Any],
    ) -> None:
        self.practice = practice
        self.store = practice.store
        self.access = access
        self.who = access.who
        self.own = access.own
        self.published = published
        self.grader = grader
        self.guidance = guidance
        # Which session each open page shows (by gr.Request.session_hash, one per page load),
        # so that the session started when the page opens or a customer is picked, a New
        # session and a first Send that overtakes them all land in the same session.
        # Forgotten when the page closes (on_unload). One lock: the check and the start are
        # quick.
        self.pages: dict[str, str] = {}
        self.pages_lock = threading.RLock()

    # --- which session each page shows ---------------------------------------------------
    @staticmethod
    def page_of(request: Request) -> str:
        return str(getattr(request, "session_hash", None) or "")

    def show(self, request: Request, session_id: str) -> None:
        key = self.page_of(request)
        if not key:
            return
        with self.pages_lock:
            self.pages.pop(key, None)
            self.pages[key] = session_id
            while len(self.pages) > MAX_PAGES:
                self.pages.pop(next(iter(self.pages)))

    def on_unload(self, request: Request = None) -> None:
        with self.pages_lock:
            self.pages.pop(self.page_of(request), None)

    def open_session(
        self, user: User, persona_id: str, private: bool, request: Request
    ) -> PracticeSession:
        """A live practice session with the customer for this page: an untouched one of the
        user's (not on another page) if there is one, else a new one. Hold ``pages_lock``."""
        key = self.page_of(request)
        held = {sid for k, sid in self.pages.items() if k != key}
        sid = untouched_session(self.store, self.practice.personas[persona_id], user.id, held)
        if sid is None:
            session = self.practice.start(persona_id, user.id)
            if private:
                self.store.set_private(session.id, True)
        else:
            session = self.practice.resume(sid)
            self.store.set_private(sid, bool(private))
        self.show(request, session.id)
        return session

    def page_session(self, user: User, persona_id: str, request: Request) -> Session | None:
        """The open session this page shows with this customer, if the page's own state
        hasn't caught up with it yet (a start and a Send racing). Hold ``pages_lock``."""
        sid = self.pages.get(self.page_of(request)) if self.page_of(request) else None
        if not sid:
            return None
        try:
            rec = self.store.get_session(sid)
        except KeyError:
            return None
        if rec.user_id != user.id or rec.persona_id != persona_id or rec.status != "open":
            return None
        return rec

    # --- starting a session --------------------------------------------------------------
    def started(self, session: PracticeSession, status: str, assessment: bool) -> SessionView:
        return SessionView(
            chat=to_chat(self.practice, session.id),
            session_id=session.id,
            status=status,
            box=gr.update(interactive=True),
            meter=ASSESSMENT_METER if assessment else session_meter(session),
            **cleared(),
            hint=gr.update(visible=not assessment),
            hint_text="",
        )

    def start_note(self, persona_id: str, private: bool) -> str:
        name = self.practice.personas[persona_id].name
        note = " It is private: trainers see its scores, never your words." if private else ""
        return f"Session started with {name}. You are the agent: reply below.{note}"

    def on_pick(self, persona_id: str) -> str:
        p = self.practice.personas.get(persona_id or "")
        return persona_card(p) if p else ""

    def on_start(
        self, persona_id: str, private: bool = False, request: Request = None
    ) -> SessionView:
        user = self.who(request)
        if persona_id not in self.published():  # archived or never published: not on offer
            return only_status("⚠️ That customer is not available. Pick another one.")
        with self.pages_lock:
            session = self.practice.start(persona_id, user.id)
            if private:
                self.store.set_private(session.id, True)
            self.show(request, session.id)
        return self.started(session, self.start_note(persona_id, private), False)

    def on_open(
        self, persona_id: str, private: bool = False, session_id: str = "", request: Request = None
    ) -> SessionView:
        """A customer picked (or the page opened): their opening line in a live session, so
        the trainee can reply at once. A session the trainee has written in (or an
        assessment under way) is never replaced: that takes **New session**."""
        user = self.who(request)
        skipped = only(SessionView)
        if not persona_id:
            return skipped
        offered = persona_id in self.published()
        personas = self.practice.personas
        with self.pages_lock:
            current = session_id or self.pages.get(self.page_of(request), "")
            if current:
                rec = self.own(user, current)
                in_use = has_trainee_words(rec) or (
                    rec.status == "open"
                    and self.store.session_extras(current)["mode"] == "assessment"
                )
                if in_use:
                    if rec.persona_id == persona_id:
                        return skipped
                    name = personas[persona_id].name
                    now = personas[rec.persona_id].name
                    busy = f"You are still talking to {now}. " if rec.status == "open" else ""
                    return only_status(f"{busy}Press **New session** to start with {name}.")
                if rec.persona_id == persona_id and rec.status == "open":
                    if current == session_id:
                        return skipped  # already on the page
                    note = self.start_note(persona_id, rec.private)
                    return self.started(self.practice.resume(current), note, False)
            if not offered:  # archived or never published: not on offer
                return only_status("⚠️ That customer is not available. Pick another one.")
            session = self.open_session(user, persona_id, private, request)
        return self.started(session, self.start_note(persona_id, private), False)

    def on_page_open(
        self, persona_id: str, private: bool = False, session_id: str = "", request: Request = None
    ) -> SessionView:
        """The page opened: the selected customer's opening line in a live session, unless
        the page has one already (a pick, a New session or a Send got there first)."""
        self.who(request)
        with self.pages_lock:
            if session_id or self.pages.get(self.page_of(request)):
                return only(SessionView)
            return self.on_open(persona_id, private, session_id, request)

    def on_start_assessment(self, assignment_id: Any, request: Request = None) -> SessionView:
        user = self.who(request)
        if assignment_id in (None, ""):
            return only_status("Pick one of your assessments first.")
        self.published()
        with refused():
            try:
                session = start_assessment(self.practice, user, int(assignment_id))
            except KeyError:
                return only_status("⚠️ That assessment's customer is no longer available.")
        self.show(request, session.id)
        return self.started(
            session,
            f"Assessment started with {session.persona.name}: no hints and no mood meter. "
            "Your feedback appears when you end the session.",
            True,
        )

    def on_private(self, private: bool, session_id: str, request: Request = None) -> str:
        user = self.who(request)
        if not session_id:
            return gr.skip()
        self.own(user, session_id)
        self.store.set_private(session_id, bool(private))
        return (
            "This session is now private: trainers see its scores, never your words."
            if private
            else "This session is no longer private."
        )

    # --- the conversation ------------------------------------------------------------------
    def on_send(
        self,
        message: str,
        chat: ChatHistory,
        session_id: str,
        persona_id: str = "",
        private: bool = False,
        request: Request = None,
    ) -> Iterator[Sent]:
        """Send the trainee's message and stream the reply. With no session on the page yet
        (the one the page starts hasn't arrived, or failed) it starts one with the picked
        customer first: what the trainee typed is sent, never dropped."""
        skip = gr.skip()
        message = message or ""
        user = self.who(request)
        created = not session_id
        if session_id:
            self.own(user, session_id)
        elif not message.strip():
            yield Sent(chat, "", "", skip, skip)
            return
        elif not persona_id or persona_id not in self.published():
            yield Sent(
                chat, message, "⚠️ Pick a customer from the list, then press Send.", skip, skip
            )
            return
        else:
            with self.pages_lock:
                rec = self.page_session(user, persona_id, request)
                session_id = (
                    rec.id if rec else self.open_session(user, persona_id, private, request).id
                )
        sid = session_id
        assessment = self.store.session_extras(sid)["mode"] == "assessment"
        session = self.practice.resume(sid)
        try:
            text = session.check_message(message)
        except InputRejected as exc:
            if not message.strip():
                yield Sent(chat, "", "", skip, sid)
                return
            shown = to_chat(self.practice, sid) if created else chat
            yield Sent(shown, message, f"⚠️ {exc}", skip, sid)
            return
        chat = to_chat(self.practice, sid)
        if not (chat and chat[-1]["role"] == "user" and chat[-1]["content"] == as_text(text)):
            chat.append({"role": "user", "content": as_text(text)})
        chat.append({"role": "assistant", "content": "…"})
        typing = "The customer is typing…"
        yield Sent(chat, "", typing, skip, sid)
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
                    yield Sent(chat, "", typing, meter, sid)
                else:
                    yield Sent(chat, "", typing, skip, sid)
        except SimulatorError as exc:
            chat.pop()
            failed = f"⚠️ {exc} Your message is saved; press Send to try again."
            yield Sent(chat, text, failed, skip, sid)
            return
        state = session.state()
        done = outcome_message(session.persona, state) if state.outcome != "open" else ""
        meter = skip if assessment else session_meter(session)
        yield Sent(to_chat(self.practice, sid), "", done, meter, sid)

    def on_end(self, session_id: str, request: Request = None) -> Ended:
        if not session_id:
            return only(Ended, status="No session to end.", box=gr.update())
        user = self.who(request)
        self.own(user, session_id)
        assessment = self.store.session_extras(session_id)["mode"] == "assessment"
        self.practice.resume(session_id).end()
        after: dict[str, Any]
        try:
            fig, trace_text, retry = session_trace(self.practice, session_id)
            if assessment:
                retry = []  # an assessment is one attempt
            after = {
                "plot": gr.update(value=fig, visible=True),
                "trace_text": trace_text,
                "retry_turn": gr.update(
                    choices=retry, value=retry[0][1] if retry else None, visible=bool(retry)
                ),
                "retry": gr.update(visible=bool(retry)),
            }
        except Exception as exc:  # the trace is a bonus: never lose the session or the grade
            hidden = cleared()
            after = {
                "plot": hidden["plot"],
                "trace_text": f"(No emotion trace: {html.escape(str(exc))})",
                "retry_turn": hidden["retry_turn"],
                "retry": hidden["retry"],
            }
        try:
            card = grade_session(self.practice, self.grader(), session_id)
        except Exception as exc:  # grading must never lose the session
            return Ended(
                status=f"Session saved (id `{session_id}`), but grading failed: {exc}",
                box=gr.update(interactive=False),
                feedback="",
                **after,
            )
        again = "" if assessment else ", or pick one of your messages below and **Retry from here**"
        return Ended(
            status=f"Session ended and saved (id `{session_id}`). Press **New session** to "
            f"practise again{again}.",
            box=gr.update(interactive=False),
            feedback=card,
            **after,
        )

    def on_retry(
        self, session_id: str, agent_idx: int | None, request: Request = None
    ) -> SessionView:
        if not session_id or agent_idx is None:
            return only_status("Pick one of your messages to retry from.")
        user = self.who(request)
        self.own(user, session_id)
        if self.store.session_extras(session_id)["mode"] == "assessment":
            return only_status("⚠️ Retry is off for assessments: an assessment is one attempt.")
        try:
            session = self.practice.retry(session_id, int(agent_idx))
        except (InputRejected, KeyError) as exc:
            return only_status(f"⚠️ {exc}")
        self.show(request, session.id)
        n = sum(1 for t in session.record.turns if t.role == "agent") + 1
        return self.started(
            session, f"Rewound to before your message #{n}. Your original attempt is saved.", False
        )

    def on_hint(self, session_id: str, request: Request = None) -> str:
        user = self.who(request)
        if not session_id:
            return status_html("Start a session first, then ask for a hint.", "info")
        self.own(user, session_id)
        try:
            hint = hint_for(self.practice.resume(session_id), self.guidance())
        except HintsDisabled as exc:
            return status_html(str(exc), "error")
        return hint_html(hint)

    # the assessments picker: the user's assessments, the newest selected
    def on_assignments(self, request: Request = None) -> Any:
        user = self.who(request)
        found = assignments_for(self.store, user)
        return gr.update(
            choices=assignment_choices(found, self.practice.personas, user.is_trainer),
            value=found[-1].id if found else None,
        )


__all__ = ["Ended", "PracticeHandlers", "Sent", "SessionView", "cleared", "only_status"]
