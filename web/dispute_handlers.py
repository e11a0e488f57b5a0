"""The page side of disputes: the "Disagree with a verdict?" panel under the feedback card,
the rulings shown with a session, and the trainers' review queue.

``app.py`` builds one :class:`DisputeHandlers`, lays out :func:`dispute_panel` under the
feedback card, :func:`session_rulings` in History and :func:`review_tab` as a tab, and calls
:meth:`DisputeHandlers.wire`. Every handler resolves the acting user from the request and
leaves the role checks to ``training/disputes.py``, so a call through the Gradio API gets exactly
what the page gets.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from storage import SessionStore
from training.disputes import (
    STATUSES,
    Dispute,
    DisputeError,
    Review,
    list_disputes,
    open_dispute,
    review,
    rule,
    verdicts_of,
)
from training.users import PermissionDenied, User, is_owner
from web.formatting import dataframe, or_none, short_date, status_html

Request = gr.Request | None
QUEUE_HEADERS = ["#", "trainee", "technique", "turn", "grader said", "sure", "status", "disputed"]
STATUS_TEXT = {"open": "open", "upheld": "upheld", "overturned": "overturned"}
CSS = """
<style>
.rp-disputes{font-size:14px;line-height:1.45}
.rp-dispute{margin:6px 0;padding:6px 10px;border-left:4px solid #9aa0a6}
.rp-dispute.rp-d-upheld{border-left-color:#1a73e8}
.rp-dispute.rp-d-overturned{border-left-color:#e37400}
.rp-review .rp-ctx{margin:3px 0}
.rp-review .rp-ctx-agent.rp-disputed{background:#fff8e1;padding:4px 8px;border-radius:6px}
.rp-review mark{background:#fff3a3}
</style>
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _said(used: bool) -> str:
    return "used" if used else "not used"


def _label(technique: str) -> str:
    return technique.replace("_", " ")


@contextlib.contextmanager
def refused() -> Iterator[None]:
    """A role check's refusal as a Gradio error (the API caller gets the same message)."""
    try:
        yield
    except PermissionDenied as exc:
        raise gr.Error(str(exc), title="Not allowed", print_exception=False) from None


# --- HTML ----------------------------------------------------------------------------------------
def ruling_text(d: Dispute) -> str:
    if d.status == "open":
        return "Waiting for a trainer's ruling."
    who = d.ruled_by or "a trainer"
    what = (
        f"Upheld by {who}: the grader's “{_said(d.verdict)}” stands."
        if d.status == "upheld"
        else f"Overturned by {who}: counted as “{_said(not d.verdict)}”."
    )
    return what + (f" Note: {d.note}" if d.note else "")


def disputes_html(found: Sequence[Dispute], empty: str = "") -> str:
    """A session's disputes with their rulings, as the trainee (or a trainer) sees them."""
    if not found:
        return f'<div class="rp-disputes" id="dispute-list">{_e(empty)}</div>' if empty else ""
    items = "".join(
        f'<div class="rp-dispute rp-d-{d.status}" data-dispute="{d.id}" data-status="{d.status}">'
        f"<b>Turn {d.turn} · {_e(_label(d.technique))}</b>: the grader said "
        f"{_said(d.verdict)} ({d.confidence:.0%} sure). Reason: “{_e(d.reason)}”<br>"
        f'<span class="rp-ruling">{_e(ruling_text(d))}</span></div>'
        for d in found
    )
    return f'{CSS}<div class="rp-disputes" id="dispute-list"><b>Disputed verdicts</b>{items}</div>'


def _highlight(text: str, quote: str | None) -> str:
    if quote and quote in text:
        a = text.index(quote)
        return _e(text[:a]) + "<mark>" + _e(quote) + "</mark>" + _e(text[a + len(quote) :])
    return _e(text)


def review_html(rv: Review) -> str:
    """One dispute for a reviewer: the turn in context (if they may read it), the verdict,
    its evidence and cited guidance, the reason and the ruling."""
    d = rv.dispute
    parts = [CSS, f'<div class="rp-review" id="dispute-review" data-dispute="{d.id}">']
    parts.append(
        f"<h4>Dispute #{d.id} · {_e(d.trainee or 'local')} · turn {d.turn} · "
        f"{_e(_label(d.technique))}</h4>"
    )
    if rv.context is None:
        parts.append(
            '<p class="rp-hidden-turn"><i>This session is private and the trainee did not share '
            "this turn: you see the verdict and their reason, not their words.</i></p>"
        )
    else:
        for i, t in enumerate(rv.context):
            last = i == len(rv.context) - 1
            who = "Agent" if t["role"] == "agent" else "Customer"
            text = _highlight(t["text"], rv.evidence) if last else _e(t["text"])
            css = f"rp-ctx rp-ctx-{t['role']}" + (" rp-disputed" if last else "")
            parts.append(f'<div class="{css}"><b>{who}:</b> {text}</div>')
    parts.append(
        f"<p><b>Grader:</b> {_said(d.verdict)} ({d.confidence:.0%} sure, "
        f"{_e(d.grader.get('source', 'classifier'))})"
        + (f". Evidence: “{_e(rv.evidence)}”" if rv.evidence else "")
        + "</p>"
    )
    for c in d.guidance:
        parts.append(
            f'<details class="rp-cite"><summary>Guidance: {_e(c.get("title", ""))} '
            f"<small>[{_e(c.get('id', ''))} · {_e(c.get('source', ''))}]</small></summary>"
            f"<p>{_e(c.get('excerpt', ''))}</p></details>"
        )
    parts.append(f"<p><b>Trainee's reason:</b> “{_e(d.reason)}”</p>")
    parts.append(f'<p class="rp-ruling" data-status="{d.status}">{_e(ruling_text(d))}</p></div>')
    return "".join(parts)


def queue_rows(found: Sequence[Dispute]) -> list[list[str]]:
    return [
        [
            str(d.id),
            d.trainee or "(local)",
            d.technique,
            str(d.turn),
            _said(d.verdict),
            f"{d.confidence:.0%}",
            STATUS_TEXT[d.status],
            short_date(d.created_at),
        ]
        for d in found
    ]


def queue_choices(found: Sequence[Dispute]) -> list[tuple[str, str]]:
    return [
        (
            f"#{d.id} · {d.trainee or '(local)'} · {d.technique} · turn {d.turn} · {d.status}",
            str(d.id),
        )
        for d in found
    ]


# --- layout --------------------------------------------------------------------------------------
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
    def outputs(self) -> list[Any]:
        """What :meth:`DisputeHandlers.panel` fills in."""
        return [self.session, self.box, self.verdict, self.share, self.status, self.listing]


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
                choices=[("All techniques", "")] + [(_label(t), t) for t in techniques],
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
    def panel(self, session_id: str, request: Request = None) -> tuple[Any, ...]:
        """The dispute panel for the session on the page: shown when it is the user's own
        graded session, with its scored verdicts and the disputes so far."""
        user = self.who(request)
        hidden = (
            "",
            gr.update(visible=False),
            gr.update(choices=[], value=None),
            gr.skip(),
            "",
            "",
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
                f"Turn {v.turn} · {_label(v.technique)} · the grader said {_said(v.used)} "
                f"({v.confidence:.0%} sure)",
                v.key,
            )
            for v in verdicts_of(rec)
            if (v.turn_idx, v.technique) not in taken
        ]
        return (
            session_id,
            gr.update(visible=True),
            gr.update(choices=choices, value=None),
            gr.update(visible=rec.private, value=False),
            "",
            disputes_html(mine),
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
                f"Disputed turn {d.turn} · {_label(d.technique)}. A trainer will rule on it; "
                "the ruling shows here and in History.",
                "ok",
            ),
            disputes_html(mine),
        )

    def after_dispute(self, session_id: str, request: Request = None) -> tuple[Any, ...]:
        """The panel's controls again (the verdict just disputed is no longer offered); the
        status message and the list just written stay as they are."""
        return self.panel(session_id, request)[:4]

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
        ).then(self.after_dispute, panel.session, panel.outputs[:4], show_progress="hidden")
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
