"""Disputes and rulings: a trainee questions one verdict, a trainer rules on it, and the
ruling becomes a labelled example that measures (and can retrain) the grader.

A *verdict* is one technique on one agent turn of a graded session: the grader said it was
used, or not. The trainee who owns the session may dispute a scored verdict with a short
reason; the dispute keeps a copy of what the grader said (verdict, confidence, evidence,
cited guidance), so a later regrade can't change what was disputed.

Roles, checked here on the server for every caller (page or Gradio API):

- the session's owner opens disputes on it and reads them, with the rulings;
- trainers read every dispute and rule on open ones (uphold or overturn, with a note);
- nobody else sees a dispute at all.

A private session's words stay the trainee's: a trainer sees the disputed turn (its text,
the turns before it and the quoted evidence) only when the trainee chose to share that turn
with the dispute. Rulings on turns that were never shared are not exported as data either.

Storage is migration ``m004_disputes`` in ``storage/``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from storage import DuplicateError, Session, SessionStore
from training.users import PermissionDenied, User, is_owner, require_trainer

if TYPE_CHECKING:
    from common.settings import Settings

Status = Literal["open", "upheld", "overturned"]
Decision = Literal["uphold", "overturn"]
STATUSES: tuple[Status, ...] = ("open", "upheld", "overturned")
MIN_REASON_CHARS = 3
MAX_REASON_CHARS = 500
MAX_NOTE_CHARS = 1000
CONTEXT_TURNS = 4
"""How many turns before the disputed one a reviewer sees with it."""
RECORD_PREFIX = "ruling-"
"""Exported rulings are ``rapport eval --input`` lines with ids ``ruling-<dispute id>``."""


class DisputeError(ValueError):
    """A dispute or ruling that can't be made; the message says why and can be shown."""


@dataclass(frozen=True)
class VerdictRef:
    """One disputable verdict of a graded session."""

    turn_idx: int
    """Position of the agent turn in the transcript."""
    turn: int
    """1-based number among the agent's turns, as the feedback card shows it."""
    technique: str
    used: bool
    confidence: float

    @property
    def key(self) -> str:
        """``"<turn_idx>:<technique>"``: how the page names a verdict."""
        return f"{self.turn_idx}:{self.technique}"


@dataclass(frozen=True)
class Dispute:
    """A dispute, its copy of the grader's verdict, and the ruling once there is one."""

    id: int
    session_id: str
    turn_idx: int
    turn: int
    technique: str
    verdict: bool
    """What the grader said: True for used, False for not used."""
    confidence: float
    evidence: str | None
    guidance: list[dict[str, str]]
    reason: str
    shared: bool
    """The trainee shared the disputed turn with trainers (matters for private sessions)."""
    trainee: str | None
    """The session's owner (None: the single-user mode's sessions)."""
    private: bool
    created_at: str
    status: Status = "open"
    ruled_by: str | None = None
    ruled_at: str | None = None
    note: str | None = None
    grader: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> bool | None:
        """The ruled truth for this technique on this turn: the verdict if upheld, its
        opposite if overturned, None while open."""
        if self.status == "upheld":
            return self.verdict
        if self.status == "overturned":
            return not self.verdict
        return None


@dataclass(frozen=True)
class Review:
    """What one viewer may see of a dispute: ``context`` and ``evidence`` are None when the
    turn is hidden from them (a private session's turn that was not shared)."""

    dispute: Dispute
    context: list[dict[str, str]] | None
    evidence: str | None

    @property
    def turn_hidden(self) -> bool:
        return self.context is None


# --- what can be disputed ---------------------------------------------------------------------
def verdicts_of(session: Session) -> list[VerdictRef]:
    """The scored verdicts in a session's saved feedback, in turn then technique order."""
    grades = (session.feedback or {}).get("grades") or []
    out: list[VerdictRef] = []
    for n, g in enumerate(grades, 1):
        for tech, v in (g.get("techniques") or {}).items():
            if v.get("used") is None:
                continue
            out.append(
                VerdictRef(
                    int(g["index"]), n, str(tech), bool(v["used"]), float(v.get("confidence", 0))
                )
            )
    return out


def _verdict(session: Session, turn_idx: int, technique: str) -> tuple[int, dict[str, Any]]:
    grades = (session.feedback or {}).get("grades") or []
    for n, g in enumerate(grades, 1):
        if int(g.get("index", -1)) == turn_idx:
            v = (g.get("techniques") or {}).get(technique)
            if v is None:
                break
            return n, v
    raise DisputeError(f"Turn {turn_idx} has no verdict on {technique!r} to dispute.")


def _citations(session: Session, technique: str, ids: Sequence[str]) -> list[dict[str, str]]:
    """The feedback card's cited guidance for this technique, the verdict's own first."""
    techs = (session.feedback or {}).get("techniques") or []
    cites = next((t.get("citations") or [] for t in techs if t.get("id") == technique), [])
    keep = ("id", "title", "source", "excerpt")
    ordered = sorted(cites, key=lambda c: c.get("id") not in ids)
    return [{k: str(c.get(k, "")) for k in keep} for c in ordered]


def _clean(text: str | None, what: str, lo: int, hi: int) -> str:
    out = " ".join((text or "").split())
    if len(out) < lo:
        raise DisputeError(f"Give a {what} of at least {lo} characters.")
    if len(out) > hi:
        raise DisputeError(f"Keep the {what} under {hi} characters (it has {len(out)}).")
    return out


# --- opening, reading and ruling -------------------------------------------------------------
def open_dispute(
    store: SessionStore,
    user: User,
    session_id: str,
    turn_idx: int,
    technique: str,
    reason: str,
    share_turn: bool = False,
) -> Dispute:
    """Dispute one verdict of the user's own graded session. ``share_turn`` lets trainers
    read the disputed turn of a private session (other sessions they can read anyway)."""
    try:
        session = store.get_session(session_id)
    except KeyError:
        raise DisputeError("There is no such session.") from None
    if not is_owner(user, session):
        raise PermissionDenied("You can dispute only your own sessions' verdicts.")
    if not session.feedback:
        raise DisputeError("This session has no feedback yet: end it to get verdicts.")
    turn, v = _verdict(session, int(turn_idx), technique)
    if v.get("used") is None:
        raise DisputeError("That verdict is 'not scored': there is nothing to dispute.")
    why = _clean(reason, "reason", MIN_REASON_CHARS, MAX_REASON_CHARS)
    ids = [str(x) for x in v.get("guidance_ids") or []]
    row = {
        "session_id": session_id,
        "turn_idx": int(turn_idx),
        "technique": technique,
        "verdict": int(bool(v["used"])),
        "confidence": float(v.get("confidence", 0.0)),
        "evidence": v.get("evidence"),
        "guidance_json": json.dumps(_citations(session, technique, ids)),
        "grader_json": json.dumps(
            {
                "turn": turn,
                "source": v.get("source", "classifier"),
                "guidance_ids": ids,
                "rubric_version": (session.feedback or {}).get("rubric_version"),
            }
        ),
        "reason": why,
        "shared": int(bool(share_turn)),
        "created_by": user.id,
        "created_at": _now(),
    }
    try:
        did = store.insert_dispute(row)
    except DuplicateError:
        raise DisputeError("You have already disputed that verdict.") from None
    return _one(store, did)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _from_row(r: Mapping[str, Any]) -> Dispute:
    grader = json.loads(r["grader_json"] or "{}")
    return Dispute(
        id=int(r["id"]),
        session_id=str(r["session_id"]),
        turn_idx=int(r["turn_idx"]),
        turn=int(grader.get("turn", 0)),
        technique=str(r["technique"]),
        verdict=bool(r["verdict"]),
        confidence=float(r["confidence"]),
        evidence=r["evidence"],
        guidance=json.loads(r["guidance_json"] or "[]"),
        reason=str(r["reason"]),
        shared=bool(r["shared"]),
        trainee=r["session_user"],
        private=bool(r["session_private"]),
        created_at=str(r["created_at"]),
        status=r["status"],
        ruled_by=r["ruled_by"],
        ruled_at=r["ruled_at"],
        note=r["note"],
        grader=grader,
    )


def _one(store: SessionStore, dispute_id: int) -> Dispute:
    rows = store.dispute_rows(id=int(dispute_id))
    if not rows:
        raise DisputeError(f"There is no dispute #{dispute_id}.")
    return _from_row(rows[0])


def may_read(user: User, d: Dispute) -> bool:
    """Trainers read every dispute; anyone else only those on their own sessions."""
    return user.is_trainer or d.trainee == user.id


def turn_visible(user: User, d: Dispute) -> bool:
    """May this user read the disputed turn's words? Its owner always; a trainer unless the
    session is private and the trainee didn't share the turn."""
    if d.trainee == user.id:
        return True
    return user.is_trainer and (not d.private or d.shared)


def get_dispute(store: SessionStore, user: User, dispute_id: int) -> Dispute:
    d = _one(store, dispute_id)
    if not may_read(user, d):
        raise PermissionDenied("That dispute belongs to another trainee.")
    return d


def list_disputes(
    store: SessionStore,
    user: User,
    technique: str | None = None,
    trainee: str | None = None,
    status: Status | None = None,
    session_id: str | None = None,
) -> list[Dispute]:
    """Disputes this user may read, oldest first, filtered. A trainee asking for another
    trainee's is refused rather than shown an empty list."""
    if trainee and not user.is_trainer and trainee != user.id:
        raise PermissionDenied("You can see only your own disputes.")
    if status is not None and status not in STATUSES:
        raise DisputeError(f"Unknown status {status!r}: use one of {', '.join(STATUSES)}.")
    where: dict[str, Any] = {}
    if technique:
        where["technique"] = technique
    if status:
        where["status"] = status
    if session_id:
        where["session_id"] = session_id
    found = [_from_row(r) for r in store.dispute_rows(**where)]
    found = [d for d in found if may_read(user, d)]
    if trainee:
        found = [d for d in found if d.trainee == trainee]
    return found


def review(store: SessionStore, user: User, dispute_id: int) -> Review:
    """A dispute with the disputed turn in context, as far as this user may see it."""
    d = get_dispute(store, user, dispute_id)
    if not turn_visible(user, d):
        return Review(d, None, None)
    try:
        turns = store.get_session(d.session_id).turns
    except KeyError:
        return Review(d, None, None)
    upto = [t for t in turns if t.idx <= d.turn_idx]
    context = [{"role": t.role, "text": t.text} for t in upto[-(CONTEXT_TURNS + 1) :]]
    return Review(d, context, d.evidence)


def rule(
    store: SessionStore, user: User, dispute_id: int, decision: str, note: str = ""
) -> Dispute:
    """Trainers only: uphold the grader's verdict or overturn it, with an optional note."""
    require_trainer(user)
    if decision not in ("uphold", "overturn"):
        raise DisputeError("Choose uphold or overturn.")
    text = _clean(note, "note", 0, MAX_NOTE_CHARS)
    d = _one(store, dispute_id)
    status: Status = "upheld" if decision == "uphold" else "overturned"
    if not store.rule_dispute(d.id, status, user.id, text):
        raise DisputeError(
            f"Dispute #{d.id} has been ruled on already ({_one(store, d.id).status})."
        )
    return _one(store, d.id)


# --- rulings as labelled data ----------------------------------------------------------------
@dataclass(frozen=True)
class RulingsData:
    """Every ruling as a ``rapport eval --input`` record, with what was left out and the
    dispute rate per technique."""

    records: list[dict[str, Any]]
    skipped_private: int
    """Rulings on private sessions' turns the trainee did not share: never exported."""
    excluded: list[str]
    """Record ids left out on request (e.g. used to fit the grader)."""
    dispute_rates: dict[str, dict[str, Any]]


def ruling_record(d: Dispute, turns: Sequence[dict[str, str]]) -> dict[str, Any]:
    """One ruling as a ``rapport eval --input`` line: the transcript up to the disputed turn,
    ``labels`` (techniques used there, as ruled) and ``rated`` (the techniques the ruling
    covers: only this one; the turn's other techniques carry no label)."""
    key = str(d.turn_idx)
    return {
        "id": f"{RECORD_PREFIX}{d.id}",
        "turns": [{"role": t["role"], "text": t["text"]} for t in turns[: d.turn_idx + 1]],
        "labels": {key: [d.technique] if d.label else []},
        "rated": {key: [d.technique]},
        "ruling": {
            "dispute_id": d.id,
            "session_id": d.session_id,
            "technique": d.technique,
            "grader_used": d.verdict,
            "confidence": d.confidence,
            "decision": d.status,
            "ruled_by": d.ruled_by,
            "ruled_at": d.ruled_at,
        },
    }


def rulings_data(store: SessionStore, exclude: Collection[str] = ()) -> RulingsData:
    """Every ruled dispute as labelled data (for ``rapport rulings export`` and the
    ``rulings`` eval suite). This reads the whole database: it is for the CLI, not a page."""
    records: list[dict[str, Any]] = []
    excluded: list[str] = []
    skipped = 0
    turns_of: dict[str, list[dict[str, str]]] = {}
    for r in store.dispute_rows():
        d = _from_row(r)
        if d.label is None:
            continue
        if d.private and not d.shared:
            skipped += 1
            continue
        rid = f"{RECORD_PREFIX}{d.id}"
        if rid in exclude:
            excluded.append(rid)
            continue
        if d.session_id not in turns_of:
            rec = store.get_session(d.session_id)
            turns_of[d.session_id] = [{"role": t.role, "text": t.text} for t in rec.turns]
        turns = turns_of[d.session_id]
        if d.turn_idx >= len(turns) or turns[d.turn_idx]["role"] != "agent":
            continue  # the transcript no longer matches: never label the wrong words
        records.append(ruling_record(d, turns))
    return RulingsData(records, skipped, excluded, dispute_rates(store))


def dispute_rates(store: SessionStore) -> dict[str, dict[str, Any]]:
    """Per technique: scored verdicts in saved feedback, disputes of them, and the rate."""
    verdicts: dict[str, int] = {}
    for sid in store.session_index(all_users=True):
        rec = store.get_session(sid)
        for v in verdicts_of(rec):
            verdicts[v.technique] = verdicts.get(v.technique, 0) + 1
    disputes: dict[str, int] = {}
    ruled: dict[str, int] = {}
    overturned: dict[str, int] = {}
    for r in store.dispute_rows():
        t = str(r["technique"])
        disputes[t] = disputes.get(t, 0) + 1
        if r["status"] != "open":
            ruled[t] = ruled.get(t, 0) + 1
        if r["status"] == "overturned":
            overturned[t] = overturned.get(t, 0) + 1
    out: dict[str, dict[str, Any]] = {}
    for t in sorted(set(verdicts) | set(disputes)):
        n, k = verdicts.get(t, 0), disputes.get(t, 0)
        out[t] = {
            "verdicts": n,
            "disputes": k,
            "dispute_rate": k / n if n else None,
            "ruled": ruled.get(t, 0),
            "overturned": overturned.get(t, 0),
            "overturn_rate": overturned.get(t, 0) / ruled[t] if ruled.get(t) else None,
        }
    return out


def write_rulings(store: SessionStore, path: Path) -> RulingsData:
    """``rapport rulings export``: every exportable ruling as one JSONL line, written to a
    temporary file and moved into place, so a failed export leaves no partial file."""
    data = rulings_data(store)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            for r in data.records:
                out.write(json.dumps(r, ensure_ascii=False) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return data


def suite_arguments(store: SessionStore, fitted: Collection[str] = ()) -> dict[str, Any]:
    """What the ``rulings`` eval suite takes (``eval.rulings_suite.suite_rulings``), read from
    the store; ``fitted`` are the ruling ids the grader under test was fitted on."""
    data = rulings_data(store)
    return {
        "records": data.records,
        "dispute_rates": data.dispute_rates,
        "fitted": list(fitted),
        "skipped_private": data.skipped_private,
    }


def _settings_store(settings: Settings) -> SessionStore:
    from storage import open_store

    return open_store(settings)


def export_rulings(settings: Settings, path: Path) -> RulingsData:
    """``rapport rulings export``: the deployment's rulings to ``path`` (raises ``StoreError``
    if the database can't be opened, ``OSError`` if the file can't be written)."""
    store = _settings_store(settings)
    try:
        return write_rulings(store, path)
    finally:
        store.close()


def fit_records(settings: Settings) -> list[dict[str, Any]]:
    """``rapport rubric fit --include-rulings``: every exportable ruling, as records."""
    store = _settings_store(settings)
    try:
        return rulings_data(store).records
    finally:
        store.close()


def eval_arguments(settings: Settings, fitted: Collection[str] = ()) -> dict[str, Any]:
    """``rapport eval``'s rulings suite input, from the deployment's database."""
    store = _settings_store(settings)
    try:
        return suite_arguments(store, fitted)
    finally:
        store.close()
