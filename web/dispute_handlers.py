"""The page side of disputes: the "Disagree with a verdict?" panel under the feedback card,
the rulings shown with a session, and the trainers' review queue.

``app.py`` builds one :class:`DisputeHandlers` and calls :meth:`DisputeHandlers.wire`; the
Practice tab lays out :func:`dispute_panel` under the feedback card, the History tab
:func:`session_rulings`, and ``app.py`` :func:`review_tab` as a tab. What they show is
``web/dispute_view.py``. Every handler resolves the acting user from the request and
leaves the role checks to ``training/disputes.py``, so a call through the Gradio API gets exactly
what the page gets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr

from storage import SessionStore
from training.disputes import (
    STATUSES,
    DisputeError,
    list_disputes,
    open_dispute,
    review,
    rule,
    verdicts_of,
)
from training.users import User, is_owner
from web.access import Request, refused
from web.dispute_view import (
    QUEUE_HEADERS,
    disputes_html,
    queue_choices,
    queue_rows,
    review_html,
    ruling_text,
    said,
    technique_label,
)
from web.formatting import dataframe, or_none, status_html


# --- layout --------------------------------------------------------------------------------------
class PanelControls(NamedTuple):
    """The dispute panel's controls: the session it disputes, and the form."""

    session: Any
    box: Any
    verdict: Any
    share: Any


class PanelView(NamedTuple):
    """The dispute panel: its controls, the status line and the session's disputes."""

    session: Any
    box: Any
    verdict: Any
    share: Any
    status: Any
    listing: Any

    @property
    def controls(self) -> PanelControls:
        return PanelControls(
            session=self.session, box=self.box, verdict=self.verdict, share=self.share
        )


@dataclass
class PanelParts:
    session: Any
    box: Any
    verdict: Any
    reason: Any
    share: Any
    submit: Any
    status: Any
    listing: Any

    @property
    def controls(self) -> list[Any]:
        """What :meth:`DisputeHandlers.after_dispute` fills in."""
        return list(
            PanelControls(
                session=self.session, box=self.box, verdict=self.verdict, share=self.share
            )
        )

    @property
    def outputs(self) -> list[Any]:
        """What :meth:`DisputeHandlers.panel` fills in."""
        return list(
            PanelView(
                session=self.session,
                box=self.box,
                verdict=self.verdict,
                share=self.share,
                status=self.status,
                listing=self.listing,
            )
        )


@dataclass
class QueueParts:
    tab: Any
    technique: Any
    trainee: Any
    status: Any
    refresh: Any
    table: Any
    pick: Any
    detail: Any
    decision: Any
    note: Any
    rule: Any
    rule_status: Any


def dispute_panel() -> PanelParts:
    """Under the feedback card: dispute one verdict, and the session's disputes so far.

    The session is named by a hidden textbox rather than the page's ``gr.State`` so that a
    Gradio API caller can say which session it disputes (the API has no access to State)."""
    session = gr.Textbox("", visible=False, elem_id="dispute-session")
    with gr.Accordion(
        "Disagree with a verdict?", open=False, visible=False, elem_id="dispute-box"
    ) as box:
        verdict = gr.Dropdown(
            choices=[], label="Verdict", elem_id="dispute-verdict", allow_custom_value=True
        )
        reason = gr.Textbox(
            label="Why? (a sentence for your trainer)", max_lines=3, elem_id="dispute-reason"
        )
        share = gr.Checkbox(
            label="Share this turn with trainers (this session is private: otherwise they see "
            "only the verdict and your reason)",
            value=False,
            visible=False,
            elem_id="dispute-share",
        )
        submit = gr.Button("Dispute this verdict", elem_id="dispute-submit")
        status = gr.HTML("", elem_id="dispute-status")
    listing = gr.HTML("", elem_id="session-disputes")
    return PanelParts(session, box, verdict, reason, share, submit, status, listing)


def session_rulings() -> Any:
    """In History: the disputes and rulings of the session being replayed."""
    return gr.HTML("", elem_id="replay-disputes")


def review_tab(techniques: Sequence[str] | None = None) -> QueueParts:
    """The trainers' review queue (the tab is shown to trainers only); ``techniques``
    default to the rubric's."""
    if techniques is None:
        from rubric.techniques import load_rubric

        techniques = load_rubric().technique_ids
    with gr.Tab("Disputes", id="disputes", visible=False) as tab:
        with gr.Row():
            technique = gr.Dropdown(
                choices=[("All techniques", "")] + [(technique_label(t), t) for t in techniques],
                value="",
                label="Technique",
                elem_id="queue-technique",
            )
            trainee = gr.Dropdown(  # choices come on page load; the handler checks the name
                choices=[("All trainees", "")],
                value="",
                label="Trainee",
                elem_id="queue-trainee",
                allow_custom_value=True,
            )
            status = gr.Dropdown(
                choices=[
                    ("Open", "open"),
                    ("Upheld", "upheld"),
                    ("Overturned", "overturned"),
                    ("Any", ""),
                ],
                value="open",
                label="Status",
                elem_id="queue-status",
            )
            refresh = gr.Button("Refresh", elem_id="queue-refresh", scale=0)
        table = gr.Dataframe(
            value=dataframe([], QUEUE_HEADERS),
            headers=QUEUE_HEADERS,
            interactive=False,
            elem_id="queue-table",
            label="Disputed verdicts (oldest first)",
        )
        pick = gr.Dropdown(
            choices=[], label="Open a dispute", elem_id="queue-pick", allow_custom_value=True
        )
        detail = gr.HTML("", elem_id="queue-detail")
        with gr.Row():
            decision = gr.Radio(
                choices=[("Uphold the grader", "uphold"), ("Overturn the grader", "overturn")],
                label="Ruling",
                elem_id="queue-decision",
            )
            note = gr.Textbox(label="Note for the trainee (optional)", elem_id="queue-note")
            rule_btn = gr.Button("Record ruling", variant="primary", elem_id="queue-rule")
        rule_status = gr.HTML("", elem_id="queue-rule-status")
    return QueueParts(
        tab,
        technique,
        trainee,
        status,
        refresh,
        table,
        pick,
        detail,
        decision,
        note,
        rule_btn,
        rule_status,
    )


def _dispute_id(value: str | int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DisputeError(f"There is no dispute {value!r}.") from None


# --- handlers ------------------------------------------------------------------------------------
class DisputeHandlers:
    """The dispute panel's and the review queue's handlers over one session store.

    ``who`` resolves the acting user from the request (raising ``gr.Error`` with no sign-in);
    ``trainees`` lists the trainee accounts for the queue's filter.
    """

    def __init__(
        self,
        store: SessionStore,
        who: Callable[[Request], User],
        trainees: Callable[[], list[str]],
    ) -> None:
        self.store = store
        self.who = who
        self.trainees = trainees

    # the trainee's side ---------------------------------------------------------------------
    def panel(self, session_id: str, request: Request = None) -> PanelView:
        """The dispute panel for the session on the page: shown when it is the user's own
        graded session, with its scored verdicts and the disputes so far."""
        user = self.who(request)
        hidden = PanelView(
            session="",
            box=gr.update(visible=False),
            verdict=gr.update(choices=[], value=None),
            share=gr.skip(),
            status="",
            listing="",
        )
        if not session_id:
            return hidden
        try:
            rec = self.store.get_session(session_id)
        except KeyError:
            return hidden
        if not is_owner(user, rec) or not rec.feedback:
            return hidden
        with refused():
            mine = list_disputes(self.store, user, session_id=session_id)
        taken = {(d.turn_idx, d.technique) for d in mine}
        choices = [
            (
                f"Turn {v.turn} · {technique_label(v.technique)} · the grader said {said(v.used)} "
                f"({v.confidence:.0%} sure)",
                v.key,
            )
            for v in verdicts_of(rec)
            if (v.turn_idx, v.technique) not in taken
        ]
        return PanelView(
            session=session_id,
            box=gr.update(visible=True),
            verdict=gr.update(choices=choices, value=None),
            share=gr.update(visible=rec.private, value=False),
            status="",
            listing=disputes_html(mine),
        )

    def dispute(
        self,
        session_id: str,
        verdict_key: str,
        reason: str,
        share: bool = False,
        request: Request = None,
    ) -> tuple[Any, ...]:
        """Dispute one verdict (``"<turn index>:<technique>"``) of the user's own session."""
        user = self.who(request)
        if not session_id:
            return status_html("End a session first: its verdicts appear here.", "error"), gr.skip()
        turn, _, technique = (verdict_key or "").partition(":")
        if not turn.isdigit() or not technique:
            return status_html("Pick the verdict you disagree with.", "error"), gr.skip()
        with refused():
            try:
                d = open_dispute(
                    self.store, user, session_id, int(turn), technique, reason, bool(share)
                )
            except DisputeError as exc:
                return status_html(str(exc), "error"), gr.skip()
            mine = list_disputes(self.store, user, session_id=session_id)
        return (
            status_html(
                f"Disputed turn {d.turn} · {technique_label(d.technique)}. A trainer will rule on it; "
                "the ruling shows here and in History.",
                "ok",
            ),
            disputes_html(mine),
        )

    def after_dispute(self, session_id: str, request: Request = None) -> PanelControls:
        """The panel's controls again (the verdict just disputed is no longer offered); the
        status message and the list just written stay as they are."""
        return self.panel(session_id, request).controls

    def session_disputes(self, session_id: str, request: Request = None) -> str:
        """The disputes and rulings on one session, for whoever may read them."""
        user = self.who(request)
        if not session_id:
            return ""
        with refused():
            found = list_disputes(self.store, user, session_id=session_id)
        return disputes_html(found)

    # the trainer's side ---------------------------------------------------------------------
    def queue(
        self, technique: str, trainee: str, status: str, request: Request = None
    ) -> tuple[Any, ...]:
        """The review queue, filtered. Trainees get only their own disputes (the API is
        open to them, the tab is not shown), and a refusal for anyone else's."""
        user = self.who(request)
        if status and status not in STATUSES:
            raise gr.Error(f"Unknown status {status!r}.", print_exception=False)
        with refused():
            found = list_disputes(
                self.store,
                user,
                technique=or_none(technique),
                trainee=or_none(trainee),
                status=or_none(status),  # type: ignore[arg-type]
            )
        return (
            dataframe(queue_rows(found), QUEUE_HEADERS),
            gr.update(choices=queue_choices(found), value=None),
        )

    def open_review(self, dispute_id: str, request: Request = None) -> tuple[Any, ...]:
        user = self.who(request)
        if not dispute_id:
            return "", gr.update(value=None), ""
        with refused():
            try:
                rv = review(self.store, user, _dispute_id(dispute_id))
            except DisputeError as exc:
                return status_html(str(exc), "error"), gr.skip(), ""
        return review_html(rv), gr.update(value=None), ""

    def rule(
        self, dispute_id: str, decision: str, note: str, request: Request = None
    ) -> tuple[Any, ...]:
        """Trainers only: record a ruling; the trainee sees it on the session."""
        user = self.who(request)
        if not dispute_id:
            return status_html("Open a dispute first.", "error"), gr.skip()
        with refused():
            try:
                d = rule(self.store, user, _dispute_id(dispute_id), decision or "", note or "")
            except DisputeError as exc:
                return status_html(str(exc), "error"), gr.skip()
            rv = review(self.store, user, d.id)
        return status_html(f"Dispute #{d.id}: {ruling_text(d)}", "ok"), review_html(rv)

    def on_load(self, request: Request = None) -> tuple[Any, ...]:
        user = self.who(request)
        names = self.trainees() if user.is_trainer else []
        return (
            gr.update(visible=user.is_trainer),
            gr.update(choices=[("All trainees", "")] + [(n, n) for n in names], value=""),
        )

    # wiring -----------------------------------------------------------------------------------
    def wire(
        self,
        demo: gr.Blocks,
        panel: PanelParts,
        queue: QueueParts,
        session_id: Any,
        feedback: Any,
        history_pick: Any,
        history_rulings: Any,
    ) -> None:
        """Attach the events. ``feedback`` is the card's HTML (it changes when a session ends
        or a new one starts), ``history_pick`` the History tab's session dropdown."""
        feedback.change(self.panel, session_id, panel.outputs, show_progress="hidden")
        panel.submit.click(
            self.dispute,
            [panel.session, panel.verdict, panel.reason, panel.share],
            [panel.status, panel.listing],
            api_name="dispute",
        ).then(self.after_dispute, panel.session, panel.controls, show_progress="hidden")
        history_pick.input(
            self.session_disputes, history_pick, history_rulings, api_name="session_disputes"
        )
        q_in = [queue.technique, queue.trainee, queue.status]
        q_out = [queue.table, queue.pick]
        queue.tab.select(self.queue, q_in, q_out, api_name="disputes")
        gr.on(
            [queue.refresh.click, queue.technique.input, queue.trainee.input, queue.status.input],
            self.queue,
            q_in,
            q_out,
        )
        queue.pick.input(
            self.open_review,
            queue.pick,
            [queue.detail, queue.decision, queue.rule_status],
            api_name="dispute_review",
        )
        queue.rule.click(
            self.rule,
            [queue.pick, queue.decision, queue.note],
            [queue.rule_status, queue.detail],
            api_name="rule",
        ).then(self.queue, q_in, q_out)
        demo.load(self.on_load, None, [queue.tab, queue.trainee])
