"""Importing a real conversation: read it (``training/transcripts.py``), mask the personal data
in it (``training/masking.py``), grade it with the session grader into the same feedback as a
practice session, and store it in History marked as a real conversation.

Nothing unmasked is stored or returned, and nothing is stored unless every conversation in
the file read, masked and graded: the sessions go in with one transaction
(:meth:`storage.SessionStore.insert_real_conversations`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storage import SessionStore
from training.masking import COMPANY_WORDS, mask_text, mask_texts
from training.transcripts import Transcript, parse, speaker_names

if TYPE_CHECKING:
    from rubric.feedback import Feedback
    from rubric.grader import Grader

REAL_PERSONA_ID = "real-conversation"
"""The ``persona_id`` stored with an imported conversation: it had no simulated customer."""
IMPORT_VERSION = "import-1"


@dataclass
class ImportedConversation:
    """One stored conversation: its session id, its masked turns and feedback, and how many
    pieces of personal data of each kind were masked."""

    session_id: str
    turns: list[dict[str, str]]
    feedback: Feedback
    masked: Counter[str]
    format: str

    @property
    def masked_note(self) -> str:
        return masked_note(self.masked)


def masked_note(counts: Counter[str]) -> str:
    """ "Masked before storing: 2 names, 1 phone." (or that nothing was found)."""
    if not counts:
        return "No personal data was found to mask."
    parts = [f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in sorted(counts.items())]
    return "Masked before storing: " + ", ".join(parts) + "."


def _names(transcript: Transcript) -> list[str]:
    """Speaker labels that are people's names, not companies ("Northgate Bank: ...")."""
    labels = [x for x in transcript.speakers if not set(x.lower().split()) & COMPANY_WORDS]
    sub = Transcript(transcript.id, [], transcript.format, dict.fromkeys(labels, "agent"))
    return speaker_names(sub)


def masked_turns(transcript: Transcript) -> tuple[list[dict[str, str]], Counter[str]]:
    """The transcript's turns with personal data masked across the whole conversation."""
    texts, counts = mask_texts([t.text for t in transcript.turns], _names(transcript))
    return [
        {"role": t.role, "text": x} for t, x in zip(transcript.turns, texts, strict=True)
    ], counts


def import_transcripts(
    store: SessionStore, grader: Grader, user_id: str | None, transcripts: Sequence[Transcript]
) -> list[ImportedConversation]:
    """Mask, grade and store conversations (all or none); newest-last order is kept."""
    from rubric.feedback import build_feedback

    ready: list[tuple[Transcript, list[dict[str, str]], Counter[str], Feedback]] = []
    for t in transcripts:
        turns, counts = masked_turns(t)
        ready.append((t, turns, counts, build_feedback(grader, turns)))
    ids = store.insert_real_conversations(
        [
            {
                "persona_id": REAL_PERSONA_ID,
                "persona_version": IMPORT_VERSION,
                "model": {
                    "source": "import",
                    "format": t.format,
                    "transcript_id": mask_text(t.id, _names(t)).text,
                    "masked": dict(counts),
                },
                "user_id": user_id,
                "turns": [(x["role"], x["text"]) for x in turns],
                "feedback": fb.model_dump(mode="json"),
            }
            for t, turns, counts, fb in ready
        ]
    )
    return [
        ImportedConversation(sid, turns, fb, counts, t.format)
        for sid, (t, turns, counts, fb) in zip(ids, ready, strict=True)
    ]


def import_file(
    store: SessionStore,
    grader: Grader,
    user_id: str | None,
    data: bytes,
    filename: str = "",
    fmt: str = "auto",
    agents: Iterable[str] = (),
) -> list[ImportedConversation]:
    """Read, mask, grade and store every conversation in a file. Raises
    :class:`training.transcripts.TranscriptError` (nothing stored) when the file can't be read."""
    return import_transcripts(store, grader, user_id, parse(data, filename, fmt, agents))


def is_real(store: SessionStore, session_id: str) -> bool:
    return bool(store.session_extras(session_id).get("real"))


def split_agents(text: str | None) -> list[str]:
    """Agent speaker names as typed: comma or newline separated."""
    return [a.strip() for a in re.split(r"[,\n]", text or "") if a.strip()]


def summary_line(found: Sequence[ImportedConversation]) -> str:
    n = len(found)
    head = f"Imported {n} real conversation{'s' if n != 1 else ''}"
    masked: Counter[str] = Counter()
    for c in found:
        masked.update(c.masked)
    return f"{head}: graded and saved in History. {masked_note(masked)}"


def public_result(found: Sequence[ImportedConversation]) -> list[dict[str, Any]]:
    """What ``rapport import --json`` prints per conversation."""
    return [
        {
            "session_id": c.session_id,
            "format": c.format,
            "masked": dict(c.masked),
            "summary": c.feedback.summary,
            "techniques": {t.id: t.status for t in c.feedback.techniques},
        }
        for c in found
    ]


# --- the command line (``rapport import``) ---------------------------------------------------
SPEAKER_ROLES = ("agent", "customer")


def speaker_roles(pairs: Sequence[str]) -> dict[str, str]:
    """``NAME=agent|customer`` options as ``{name: role}``; a ValueError says what is wrong."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, role = pair.rpartition("=")
        role = role.strip().lower()
        if not sep or not name.strip() or role not in SPEAKER_ROLES:
            raise ValueError(
                f"--speaker {pair!r}: write NAME=agent or NAME=customer, e.g. --speaker Tom=agent"
            )
        out[name.strip()] = role
    return out


def import_with_roles(
    store: SessionStore,
    grader: Grader,
    user_id: str | None,
    data: bytes,
    filename: str = "",
    fmt: str = "auto",
    roles: Mapping[str, str] | None = None,
) -> list[ImportedConversation]:
    """:func:`import_file` with speakers named by role. Agents named settle it; with only
    customers named, the file's other speakers (not labelled customer) are the agents."""
    from training.transcripts import SpeakersUnclear, role_of

    roles = dict(roles or {})
    agents = [n for n, r in roles.items() if r == "agent"]
    customers = {n.casefold() for n, r in roles.items() if r == "customer"}
    try:
        return import_file(store, grader, user_id, data, filename, fmt, agents)
    except SpeakersUnclear as exc:
        if agents or not customers:
            raise
        rest = [
            s for s in exc.speakers if s.casefold() not in customers and role_of(s) != "customer"
        ]
        if not rest:
            raise
        return import_file(store, grader, user_id, data, filename, fmt, rest)


def feedback_text(c: ImportedConversation) -> str:
    """The feedback card as plain text, for the terminal."""
    fb = c.feedback
    mark = {"used": "✓", "missed": "✗", "not_scored": "·"}
    lines = [f"Session {c.session_id} ({c.format}) · {c.masked_note}", "", fb.summary, ""]
    for t in fb.techniques:
        lines.append(f"{mark.get(t.status, '·')} {t.label}: {t.status.replace('_', ' ')}")
        lines.extend(f'    turn {i.turn}: "{i.quote}"' for i in t.instances)
        if t.rewrite:
            lines.append(f'    try this in turn {t.rewrite.turn}: "{t.rewrite.suggestion}"')
        lines.extend(f"    guidance: {g.title} [{g.id} · {g.source}]" for g in t.citations)
    flagged = [m for m in fb.markers if m.instances]
    for m in flagged:
        lines.append(f"⚑ {m.label}: flagged")
        lines.extend(f'    turn {i.turn}: "{i.quote}"' for i in m.instances)
    return "\n".join(lines)
