"""Deterministic extraction: a draft persona from a masked conversation and its feedback."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sim.director import listening_clauses, mentions
from training.masking import (
    PLACEHOLDER_RE,
    company_names,
    has_placeholder,
)

if TYPE_CHECKING:
    pass

from training.persona_draft.language import archetype_of, distress
from training.persona_draft.records import DraftError
from training.persona_draft.text import (
    _PRODUCTS,
    _RESOLUTION,
    _TECHNIQUE_WORDS,
    DRAFT_NAMES,
    _clip,
    _content_words,
    _quote,
    _slug,
    sentences,
    third_person,
    unmask_words,
)


# --- extraction --------------------------------------------------------------------------------
@dataclass
class _Convo:
    turns: list[dict[str, str]]
    verdicts: dict[int, dict[str, bool | None]]

    @property
    def customer(self) -> list[tuple[int, str]]:
        return [(i, t["text"]) for i, t in enumerate(self.turns) if t["role"] == "customer"]

    @property
    def agent(self) -> list[tuple[int, str]]:
        return [(i, t["text"]) for i, t in enumerate(self.turns) if t["role"] == "agent"]

    def next_customer(self, i: int) -> tuple[int, str] | None:
        return next(((j, t) for j, t in self.customer if j > i), None)

    def prev_customer(self, i: int) -> tuple[int, str] | None:
        return next(((j, t) for j, t in reversed(self.customer) if j < i), None)


def _verdicts(feedback: Mapping[str, Any] | None) -> dict[int, dict[str, bool | None]]:
    """Agent turn index -> technique / marker id -> used, from saved feedback's grades."""
    out: dict[int, dict[str, bool | None]] = {}
    for g in (feedback or {}).get("grades") or []:
        row: dict[str, bool | None] = {}
        for tid, v in (g.get("techniques") or {}).items():
            row[tid] = v.get("used")
        for mid, v in (g.get("markers") or {}).items():
            row[mid] = v.get("used")
        out[int(g.get("index", -1))] = row
    return out


def _product(texts: Sequence[str]) -> str:
    low = " ".join(texts).lower()
    counts = Counter({p: len(re.findall(rf"\b{p}s?\b", low)) for p in _PRODUCTS})
    mine = re.findall(r"\bmy ([a-z]+(?: [a-z]+)?)", low)
    for phrase in mine:
        for p in _PRODUCTS:
            if p in phrase.split():
                counts[p] += 2
    best = [p for p, n in counts.most_common(1) if n]
    return best[0] if best else "their order or account"


def _hidden_facts(c: _Convo, opening: str) -> list[dict[str, Any]]:
    """What the customer told only when asked: replies to agent questions that add words
    the first message didn't have."""
    known = set(_content_words(opening))
    facts: list[dict[str, Any]] = []
    ids: set[str] = set()
    for i, agent_text in c.agent:
        asks = listening_clauses(agent_text)
        nxt = c.next_customer(i)
        if not asks or nxt is None:
            continue
        said = [s for s in sentences(nxt[1]) if not has_placeholder(s)]
        reply = " ".join(said)
        new = [w for w in _content_words(reply) if w not in known]
        if len(reply.split()) < 4 or len(new) < 2:
            continue
        topics = [w for w in _content_words(" ".join(asks)) if w not in ("anything", "else")]
        topics = (topics[:4] + [w for w in new if w not in topics][:2])[:6]
        if not topics:
            continue
        fid = _slug(topics[0])
        n = 2
        while fid in ids:
            fid, n = f"{_slug(topics[0])}_{n}", n + 1
        ids.add(fid)
        facts.append({"id": fid, "fact": third_person(_clip(reply, 60)), "topics": topics})
        known.update(new)
        if len(facts) == 4:
            break
    return facts


def _moves(c: _Convo) -> tuple[list[str], list[str]]:
    """(escalates_when, softens_when): agent turns after which the customer's words got
    more upset or calmer, described by what the grader saw in them."""
    escalates: list[str] = []
    softens: list[str] = []
    for i, agent_text in c.agent:
        before, after = c.prev_customer(i), c.next_customer(i)
        v = c.verdicts.get(i, {})
        quote = _quote(agent_text)
        if v.get("dismissive"):
            escalates.append(f"the agent brushes the problem off, as in “{quote}”")
            continue
        if before is None or after is None:
            continue
        delta = distress(after[1]) - distress(before[1])
        used = [t for t in ("validate", "listen", "affirm", "cooperate") if v.get(t)]
        if delta <= -1.0:
            what = _TECHNIQUE_WORDS[used[0]] if used else "says something like this"
            softens.append(f"the agent {what}: “{quote}”")
        elif delta >= 1.0:
            missed = [t for t in ("validate", "listen") if v.get(t) is False]
            what = (
                "moves on without acknowledging how they feel"
                if "validate" in missed
                else "answers without asking what happened"
                if missed
                else "says something like this"
            )
            escalates.append(f"the agent {what}: “{quote}”")
    return list(dict.fromkeys(escalates))[:4], list(dict.fromkeys(softens))[:4]


_DEFAULT_ESCALATES = [
    "the agent brushes the problem off or suggests it is the customer's fault",
    "the agent gives a vague answer with no next step or time",
]
_DEFAULT_SOFTENS = [
    "the agent names how they feel and says it makes sense",
    "the agent gives a clear next step and says when it will happen",
]


def _resolution(c: _Convo) -> dict[str, Any]:
    offers = [t for i, t in c.agent if c.verdicts.get(i, {}).get("cooperate")] or [
        t for _, t in c.agent if any(mentions(t, w) for w in _RESOLUTION)
    ]
    said = " ".join(offers)
    steps = [w for w in _RESOLUTION if mentions(said, w)][:6]
    best = max(offers, key=lambda t: sum(mentions(t, w) for w in steps)) if offers else ""
    example = " ".join(s for s in sentences(best) if not has_placeholder(s)) or None
    if not steps:
        steps = ["next step"]
    return {
        "description": (
            "What the agent offered in the real conversation: " + ", ".join(steps) + "."
        ),
        "satisfied_by": steps,
        **({"example_offer": _clip(example, 60)} if example else {}),
    }


def _style(texts: Sequence[str]) -> str:
    words = [len(t.split()) for t in texts] or [0]
    avg = sum(words) / len(words)
    parts = [
        "Writes short, quick messages"
        if avg < 12
        else "Writes long, detailed messages"
        if avg > 40
        else "Writes a few sentences at a time"
    ]
    joined = " ".join(texts)
    if joined.count("!") >= 2:
        parts.append("uses exclamation marks when upset")
    if joined.count("?") >= 3:
        parts.append("asks a lot of questions")
    if re.search(r"\b[A-Z]{3,}\b", PLACEHOLDER_RE.sub("", joined)):
        parts.append("puts words in capitals for emphasis")
    if joined == joined.lower():
        parts.append("writes in lower case with little punctuation")
    if any("\n" in t for t in texts):
        parts.append("sends several messages in a row")
    sample = next(
        (
            s
            for t in texts
            for s in sentences(t)
            if 3 <= len(s.split()) <= 14 and not has_placeholder(s)
        ),
        None,
    )
    style = ", ".join(parts) + "."
    return style + (f" Says things like “{sample}”" if sample else "")


def _difficulty(start: float, end: float) -> Literal["easy", "medium", "hard"]:
    if end >= start + 1 or start >= 8.5:
        return "hard"
    if end <= start - 2 and start <= 6:
        return "easy"
    return "medium"


def extract(
    turns: Sequence[Mapping[str, str]],
    feedback: Mapping[str, Any] | None = None,
    seed: str = "",
) -> dict[str, Any]:
    """The persona fields from a masked conversation and its saved feedback (its grades
    say what the agent did on each turn). Deterministic: same input, same draft."""
    c = _Convo([{"role": t["role"], "text": t["text"]} for t in turns], _verdicts(feedback))
    customer = [t for _, t in c.customer]
    if not customer:
        raise DraftError("The conversation has no customer turns to draft a persona from.")
    digest = hashlib.sha256((seed or customer[0]).encode()).hexdigest()
    name = DRAFT_NAMES[int(digest[:8], 16) % len(DRAFT_NAMES)]
    first = name.split()[0]
    opening_raw = " ".join(customer[0].split("\n"))
    company = next(iter(company_names(t["text"] for t in c.turns)), "the company")
    product = _product(customer)
    problem_src = [s for s in sentences(opening_raw) if not has_placeholder(s)] or sentences(
        unmask_words(opening_raw, first)
    )
    problem = third_person(_clip(" ".join(problem_src[:2]), 45))
    start = distress(" ".join(customer[:2]))
    end = distress(customer[-1])
    escalates, softens = _moves(c)
    facts = _hidden_facts(c, opening_raw)
    opening = _clip(unmask_words(opening_raw, first), 70)
    return {
        "name": name,
        "archetype": archetype_of(customer[:2]).value,
        "difficulty": _difficulty(start, end),
        "scenario": {
            "company": company,
            "product": product,
            "problem": problem,
            "channel": "chat",
        },
        "backstory": (
            f"{first} contacted {company} about {'their ' if ' ' not in product else ''}"
            f"{product}. Drafted from a real conversation: {problem} "
            f"They ended that chat {'calmer' if end < start - 0.5 else 'no calmer' if end <= start + 0.5 else 'more upset'} "
            "than they began. Fill in who they are and why this matters to them."
        ),
        "trainee_brief": f"A customer is contacting {company} about their {product}.",
        "opening_line": opening,
        "speaking_style": _style(customer),
        "emotional_baseline": round(start),
        "escalates_when": escalates or list(_DEFAULT_ESCALATES),
        "softens_when": softens or list(_DEFAULT_SOFTENS),
        "hidden_facts": facts,
        "resolution": _resolution(c),
    }
