"""Session feedback: per technique used / missed / not scored, with the trainee's own words,
the guidance behind each verdict, and one concrete rewrite for each missed technique."""

from __future__ import annotations

import re
from collections.abc import Sequence
from string import Template
from typing import Literal

from pydantic import BaseModel, Field

from rubric.grader import Grader, TurnGrade, summarise

Status = Literal["used", "missed", "not_scored"]


class Citation(BaseModel):
    id: str
    title: str
    source: str
    excerpt: str


class Instance(BaseModel):
    index: int = Field(description="Position of the agent turn in the transcript.")
    turn: int = Field(description="1-based number among the agent's turns, for display.")
    quote: str


class Rewrite(BaseModel):
    index: int
    turn: int
    original: str
    suggestion: str
    example: str | None = Field(None, description="A rubric exemplar close to this turn.")


class TechniqueFeedback(BaseModel):
    id: str
    label: str
    status: Status
    instances: list[Instance] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)
    rewrite: Rewrite | None = None
    disagreements: int = 0


class Feedback(BaseModel):
    techniques: list[TechniqueFeedback]
    markers: list[TechniqueFeedback]
    summary: str
    grades: list[TurnGrade]
    rubric_version: int


_SWAPS = {
    "i": "you",
    "i'm": "you're",
    "im": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "am": "are",
    "we": "you",
    "we're": "you're",
    "we've": "you've",
    "our": "your",
    "us": "you",
    "you": "I",
    "your": "my",
    "you're": "I'm",
}


_CLAUSE_WORDS = {"and", "but", "so", "because", "that", "when", "if", "since", "while", "though"}


def in_agent_voice(customer_text: str, max_words: int = 22) -> str:
    """The customer's main point, with pronouns swapped so the agent can say it back."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", customer_text.strip()) if s]
    # Prefer the most informative sentence: the longest of the first three.
    main = max(sentences[:3], key=len) if sentences else customer_text
    words = main.rstrip(".!?").split()
    out: list[str] = []
    clause_start = True
    for w in words[:max_words]:
        bare = w.strip(",;:\"'()")
        core = bare.lower().replace("\u2019", "'")
        swap = _SWAPS.get(core)
        if core == "you":  # subject "I", object "me"
            swap = "I" if clause_start else "me"
        elif core in ("was", "wasn't") and out and out[-1].lower() == "you":
            swap = "were" if core == "was" else "weren't"
        out.append(w.replace(bare, swap) if swap else w)
        clause_start = w.endswith((",", ";", ":")) or core in _CLAUSE_WORDS
    text = " ".join(out)
    return text[0].lower() + text[1:] if text and not text.startswith("I ") else text


def _pick_turn(technique: str, turns: Sequence[dict[str, str]], agent_idx: list[int]) -> int:
    """The agent turn where a missed technique would have helped most."""
    if technique == "cooperate":
        return agent_idx[-1]
    if technique == "affirm":

        def prev_len(i: int) -> int:
            return len(
                next((t["text"] for t in reversed(turns[:i]) if t["role"] == "customer"), "")
            )

        return max(agent_idx, key=prev_len)
    return agent_idx[0]


def build_feedback(
    grader: Grader, turns: Sequence[dict[str, str]], grades: list[TurnGrade] | None = None
) -> Feedback:
    grades = grades if grades is not None else grader.grade_turns(turns)
    agent_idx = [g.index for g in grades]
    number = {idx: n for n, idx in enumerate(agent_idx, 1)}
    summary = summarise(grades, grader.technique_ids)
    status_of: dict[str, Status] = {t: "used" for t in summary.used}
    status_of.update({t: "missed" for t in summary.missed})
    status_of.update({t: "not_scored" for t in summary.not_scored})

    def citations(ids: list[str]) -> list[Citation]:
        out: list[Citation] = []
        if grader.guidance is None:
            return out
        for pid in ids:
            p = grader.guidance.get_passage(pid)
            if p and all(c.id != p.id for c in out):
                out.append(
                    Citation(id=p.id, title=p.title, source=p.source, excerpt=p.excerpt[:600])
                )
        return out

    techniques: list[TechniqueFeedback] = []
    for tid in grader.technique_ids:
        t = grader.rubric.get(tid)
        verdicts = [(g.index, g.techniques[tid]) for g in grades]
        instances = [
            Instance(index=i, turn=number[i], quote=v.evidence)
            for i, v in verdicts
            if v.used and v.evidence
        ]
        cited: list[str] = []
        for _, v in verdicts:
            if v.used if status_of[tid] == "used" else v.used is False:
                cited.extend(x for x in v.guidance_ids if x not in cited)
        fb = TechniqueFeedback(
            id=tid,
            label=t.label,
            status=status_of[tid],
            instances=instances,
            citations=citations(cited[:2]),
            disagreements=sum(1 for _, v in verdicts if v.disagreement),
        )
        if fb.status == "missed" and agent_idx:
            i = _pick_turn(tid, turns, agent_idx)
            customer = next((x["text"] for x in reversed(turns[:i]) if x["role"] == "customer"), "")
            template = Template(t.rewrite or "$original")
            suggestion = template.safe_substitute(
                concern=in_agent_voice(customer), original=turns[i]["text"]
            )
            example = None
            vec = grader.index.collection.query(
                query_texts=None,
                query_embeddings=[_embed(turns[i]["text"])],
                n_results=1,
                where={"$and": [{"technique": tid}, {"label": 1}]},
                include=["documents"],
            )
            if vec["documents"] and vec["documents"][0]:
                example = vec["documents"][0][0]
            fb.rewrite = Rewrite(
                index=i,
                turn=number[i],
                original=turns[i]["text"],
                suggestion=suggestion,
                example=example,
            )
        techniques.append(fb)

    markers: list[TechniqueFeedback] = []
    for mid in grader.rubric.marker_ids:
        hits = [
            Instance(index=g.index, turn=number[g.index], quote=g.markers[mid].evidence or "")
            for g in grades
            if mid in g.markers and g.markers[mid].used and g.markers[mid].evidence
        ]
        markers.append(
            TechniqueFeedback(
                id=mid,
                label=grader.rubric.get(mid).label,
                status="used" if hits else "missed",
                instances=hits,
                citations=citations(_marker_guidance(grader, mid)) if hits else [],
            )
        )
    return Feedback(
        techniques=techniques,
        markers=markers,
        summary=_summary_text(techniques, markers, len(agent_idx)),
        grades=grades,
        rubric_version=grader.rubric.version,
    )


def _embed(text: str) -> list[float]:
    from rubric.embeddings import get_encoder

    vec: list[float] = get_encoder().encode([text])[0].tolist()
    return vec


def _marker_guidance(grader: Grader, marker_id: str) -> list[str]:
    if grader.guidance is None:
        return []
    tag = grader.rubric.get(marker_id).guidance_tags[0]
    return [
        p.id for p in grader.guidance.search(grader.rubric.get(marker_id).definition, tag=tag, k=1)
    ]


def _summary_text(
    techniques: list[TechniqueFeedback], markers: list[TechniqueFeedback], n_turns: int
) -> str:
    if n_turns == 0:
        return "You ended the session before replying, so there is nothing to grade yet."
    used = [t for t in techniques if t.status == "used"]
    missed = [t for t in techniques if t.status == "missed"]
    parts = [f"Across {n_turns} of your turns you used {len(used)} of {len(techniques)} techniques"]
    if used:
        parts[0] += ": " + ", ".join(f"{t.id} ({len(t.instances)}×)" for t in used)
    parts[0] += "."
    if missed:
        parts.append(
            "Missed: "
            + ", ".join(t.id for t in missed)
            + f". Start with {missed[0].id}: see the suggested rewrite of turn {missed[0].rewrite.turn if missed[0].rewrite else 1}."
        )
    ns = [t.id for t in techniques if t.status == "not_scored"]
    if ns:
        parts.append("Not scored (the grader was unsure): " + ", ".join(ns) + ".")
    for m in markers:
        if m.instances:
            parts.append(
                f"Watch for {m.label.lower()}: turn "
                + ", ".join(str(i.turn) for i in m.instances)
                + "."
            )
    return " ".join(parts)
