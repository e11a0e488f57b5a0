"""A draft persona from an imported real conversation, for "Practise this customer".

The draft is built from the masked conversation and its feedback by deterministic
extraction, using the same signals the simulation runs on:

- **scenario**: the company (``sim.masking.company_names``), the product the customer
  talks about most, and the problem from their first message, in the third person;
- **opening line**: the customer's first message; masked data in it is rewritten into
  words a customer would say ("my phone number", the draft's own first name);
- **hidden facts**: what the customer said only in answer to a question, where a question
  is what the director counts as listening (``sim.director.listening_clauses``); the
  question's words become the fact's topics, so the same question unlocks it in practice;
- **emotional baseline** and **archetype**: from the customer's own words (feeling words,
  exclamation marks, capitals) in their first messages;
- **escalates_when / softens_when**: agent turns after which the customer's language got
  calmer or more upset, described by what the grader saw in them (the techniques used,
  the dismissive marker) with the agent's own words;
- **resolution**: the steps the agent offered in the turns the grader marked cooperative.

Two ways to improve the wording, never the facts: on the embedded model a :data:`Phraser`
may reword the problem and the opening line (each result checked, else the extracted text
stays); with a capable configured model, :func:`llm_draft` asks it for the whole persona,
validated against the same schema and checked for personal data, falling back to the
extracted draft if it fails either. The trainer finishes the draft in the Persona Studio;
it is published through the usual probe check.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import ValidationError

from sim.director import listening_clauses, mentions
from sim.masking import (
    PLACEHOLDER_RE,
    company_names,
    find_pii,
    has_placeholder,
    mask_text,
    wordset,
)
from sim.persona import SLUG, Archetype, PersonaSpec

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from common.settings import Settings

Phraser = Callable[[str, str], str | None]
"""``(instruction, text) -> reworded text`` (None or anything unusable keeps the text)."""
DraftSource = Literal["extracted", "extracted+phrased", "llm"]


class DraftError(ValueError):
    """No draft can be made from this conversation; the message says why."""


@dataclass
class Draft:
    """A draft persona: its validated fields, its YAML, a suggested id, and notes for the
    trainer on where each part came from and what to check."""

    spec: PersonaSpec
    yaml_text: str
    suggested_id: str
    source: DraftSource
    notes: list[str] = field(default_factory=list)


# --- the customer's language -------------------------------------------------------------------
_LEXICON: dict[str, tuple[str, ...]] = {
    "anger": (
        "ridiculous",
        "unacceptable",
        "disgusting",
        "disgraceful",
        "useless",
        "joke",
        "pathetic",
        "furious",
        "angry",
        "fuming",
        "livid",
        "outrageous",
        "appalling",
        "terrible",
        "awful",
        "worst",
        "incompetent",
        "sick of",
        "fed up",
        "had enough",
        "third time",
        "waste of",
        "rubbish",
        "shocking",
        "absolute",
        "sort it out",
    ),
    "worry": (
        "worried",
        "scared",
        "anxious",
        "panic",
        "panicking",
        "desperate",
        "urgent",
        "terrified",
        "nervous",
        "please help",
        "stressed",
        "frightened",
        "what if",
        "is it lost",
        "really need",
    ),
    "grief": (
        "passed away",
        "died",
        "death",
        "funeral",
        "bereavement",
        "bereaved",
        "devastated",
        "heartbroken",
        "crying",
        "late husband",
        "late wife",
        "lost my",
    ),
    "confusion": (
        "confused",
        "don't understand",
        "do not understand",
        "not sure",
        "no idea",
        "what does",
        "how do i",
        "makes no sense",
        "lost track",
    ),
    "rush": (
        "quickly",
        "hurry",
        "no time",
        "asap",
        "in a rush",
        "right now",
        "boarding",
        "minutes",
        "immediately",
        "straight away",
    ),
    "doubt": (
        "scam",
        "don't believe",
        "do not believe",
        "prove",
        "charged twice",
        "double charged",
        "not falling for",
        "sounds like",
        "supposedly",
        "again",
    ),
    "letdown": (
        "disappointed",
        "let down",
        "ruined",
        "expected better",
        "gutted",
        "special",
        "looking forward",
    ),
    "calm": (
        "thanks",
        "thank you",
        "great",
        "perfect",
        "brilliant",
        "appreciate",
        "lovely",
        "cheers",
        "helpful",
        "that's fine",
        "that helps",
        "relieved",
        "okay good",
        "sounds good",
    ),
}
_WEIGHTS = {
    "anger": 1.3,
    "worry": 1.1,
    "grief": 1.2,
    "confusion": 0.5,
    "rush": 0.5,
    "doubt": 0.6,
    "letdown": 0.8,
    "calm": -1.2,
}
_ARCHETYPE_OF = {
    "grief": Archetype.grieving,
    "anger": Archetype.irate,
    "worry": Archetype.anxious,
    "confusion": Archetype.confused,
    "rush": Archetype.rushed,
    "doubt": Archetype.sceptical,
    "letdown": Archetype.disappointed,
}


def _hits(text: str) -> Counter[str]:
    low = text.lower().replace("’", "'")
    found: Counter[str] = Counter()
    for kind, words in _LEXICON.items():
        for w in words:
            found[kind] += len(re.findall(rf"(?<![a-z]){re.escape(w)}(?![a-z])", low))
    return found


def distress(text: str) -> float:
    """How upset a customer message reads, 0 (calm) to 10, from its feeling words,
    exclamation marks, repeated question marks and words in capitals."""
    hits = _hits(text)
    score = 3.0 + sum(_WEIGHTS[k] * min(n, 3) for k, n in hits.items())
    score += 0.5 * min(text.count("!"), 3) + 0.5 * min(text.count("??"), 2)
    caps = [w for w in re.findall(r"\b[A-Z]{3,}\b", PLACEHOLDER_RE.sub("", text))]
    score += 0.7 * min(len(caps), 3)
    return round(min(10.0, max(0.0, score)), 1)


def archetype_of(texts: Sequence[str]) -> Archetype:
    """The customer's broad type, from the feeling words of their first messages."""
    hits: Counter[str] = Counter()
    for t in texts:
        hits.update(_hits(t))
    ranked = [(n * _WEIGHTS[k], k) for k, n in hits.items() if k in _ARCHETYPE_OF and n]
    if not ranked:
        return Archetype.other
    return _ARCHETYPE_OF[max(ranked)[1]]


# --- small text helpers -------------------------------------------------------------------------
_STOP = wordset(
    """
    a an the and or but so to of in on at for with by from as is are was were be been being
    it its this that these those i me my we our you your he she they them their there here
    what when where who why how which can could would will shall should may might must do
    does did done have has had not no yes please just also any some all about into out up
    down over than then too very really get got go going let tell know sure okay ok thanks
    thank hi hello sorry see check help need want like one more again still now today
    exactly around doing take give make happen happened started anything else right
    """
)
_PRODUCTS = (
    "broadband",
    "internet",
    "wifi",
    "router",
    "phone",
    "mobile",
    "contract",
    "bill",
    "account",
    "card",
    "transfer",
    "payment",
    "order",
    "parcel",
    "delivery",
    "package",
    "subscription",
    "membership",
    "flight",
    "booking",
    "ticket",
    "insurance",
    "policy",
    "claim",
    "loan",
    "mortgage",
    "meter",
    "boiler",
    "heater",
    "app",
    "laptop",
    "tv",
    "dress",
    "photos",
    "prescription",
    "refund",
    "energy",
    "tariff",
    "sim",
    "plan",
)
_RESOLUTION = (
    "refund",
    "replacement",
    "replace",
    "resend",
    "credit",
    "compensation",
    "engineer",
    "call back",
    "callback",
    "investigation",
    "investigate",
    "trace",
    "reference",
    "cancel",
    "discount",
    "voucher",
    "escalate",
    "manager",
    "update",
    "confirmation",
    "repair",
    "reconnect",
    "reset",
    "waive",
    "rebook",
    "priority",
    "deliver",
    "today",
    "tomorrow",
)
_PLACEHOLDER_WORDS = {
    "[EMAIL]": "my email address",
    "[PHONE]": "my phone number",
    "[POSTCODE]": "my postcode",
    "[CARD]": "my card",
    "[ACCOUNT]": "my account",
}
DRAFT_NAMES = (
    "Jordan Ellis",
    "Sam Patel",
    "Alex Morgan",
    "Robin Clarke",
    "Chris Adeyemi",
    "Jamie Walsh",
    "Taylor Reid",
    "Casey Brennan",
    "Morgan Hughes",
    "Riley Chen",
)
_TECHNIQUE_WORDS = {
    "listen": "asks them to explain what happened",
    "validate": "names how they feel and says it makes sense",
    "cooperate": "works out a concrete next step with them",
    "affirm": "sums up their problem to check it was understood",
}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _content_words(text: str) -> list[str]:
    low = PLACEHOLDER_RE.sub(" ", text.lower().replace("’", "'"))
    words = re.findall(r"[a-z][a-z'-]{2,}", low)
    return [w for w in dict.fromkeys(words) if w not in _STOP and "'" not in w]


def _clip(text: str, words: int) -> str:
    ws = text.split()
    return text if len(ws) <= words else " ".join(ws[:words]).rstrip(",;:") + "…"


def _quote(text: str, words: int = 18) -> str:
    """An agent's words for a rule: the first sentence (without masked data), clipped."""
    ok = [s for s in sentences(text) if not has_placeholder(s)]
    return _clip(ok[0] if ok else PLACEHOLDER_RE.sub("…", text), words)


_THIRD = {
    "i": "they",
    "i'm": "they're",
    "im": "they're",
    "i've": "they've",
    "i'd": "they'd",
    "i'll": "they'll",
    "me": "them",
    "my": "their",
    "mine": "theirs",
    "myself": "themselves",
    "am": "are",
    "we": "they",
    "our": "their",
    "us": "them",
}


def third_person(text: str) -> str:
    """A customer's sentence about themselves, as said about them ("my" -> "their")."""
    out: list[str] = []
    for w in text.split():
        bare = w.strip(",.;:!?\"'()")
        core = bare.lower().replace("’", "'")
        swap = _THIRD.get(core)
        if core in ("was", "wasn't") and out and out[-1].lower() == "they":
            swap = "were" if core == "was" else "weren't"
        out.append(w.replace(bare, swap) if swap and bare else w)
    text = " ".join(out)
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def unmask_words(text: str, first_name: str) -> str:
    """Masked data taken out of what a customer says: a clause giving a phone number,
    email, postcode, card or account is left out ("my number is [PHONE]"), or, if that
    would leave nothing, says "my phone number" and the like; "I'm [NAME]" takes the
    draft's own name and other names are dropped."""
    text = re.sub(
        r"\b(my name is|my name's|i'm|i am|this is|it's)\s+\[NAME\]",
        lambda m: f"{m.group(1)} {first_name}",
        text,
        flags=re.I,
    )
    text = re.sub(r"(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s+\[NAME\]", "you", text)
    text = re.sub(r"\s*\[NAME\]", "", text)
    # "my card [CARD] was charged": the words already say what it was
    text = re.sub(
        r"\b(card|account|number|postcode|email|address|phone|mobile)\s+"
        r"\[(?:CARD|ACCOUNT|PHONE|POSTCODE|EMAIL)\](?=\s+[a-z])",
        r"\1",
        text,
        flags=re.I,
    )
    pieces = re.split(r"(?<=[,.;!?])\s+", text)
    if any(not has_placeholder(x) for x in pieces):
        kept: list[str] = []
        for x in pieces:
            if not has_placeholder(x):
                kept.append(x)
            elif kept and kept[-1].endswith(",") and x[-1:] in ".!?":
                kept[-1] = kept[-1][:-1] + x[-1]  # "I'm Jo, my number is [PHONE]." -> "I'm Jo."
        text = " ".join(kept)
    for ph, words in _PLACEHOLDER_WORDS.items():
        text = text.replace(ph, words)
    return re.sub(r"\s{2,}", " ", re.sub(r"\s+([,.!?])", r"\1", text)).strip()


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s[:40].strip("_") or "fact"


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


# --- checks ----------------------------------------------------------------------------------
def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def personal_data_in(data: Mapping[str, Any]) -> list[str]:
    """Every text field of a draft that still holds masked placeholders or personal data
    (beyond the draft's own invented name)."""
    own = set(str(data.get("name", "")).split())
    bad: list[str] = []
    for s in _strings(data):
        if has_placeholder(s) or any(
            sp.kind != "name" or s[sp.start : sp.end] not in own for sp in find_pii(s)
        ):
            bad.append(_clip(s, 12))
    return bad


def scrub(value: Any, first_name: str) -> Any:
    """Every text in a draft masked once more and put into a customer's words: a last pass
    for personal data that only shows once pieces of the conversation are joined."""
    if isinstance(value, str):
        return unmask_words(mask_text(value, ()).text, first_name) or value
    if isinstance(value, Mapping):
        return {
            k: v
            if k in ("name", "id", "archetype", "difficulty", "channel")
            else scrub(v, first_name)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub(v, first_name) for v in value]
    return value


def validate_draft(data: Mapping[str, Any]) -> PersonaSpec:
    """The draft as a :class:`PersonaSpec`, or :class:`DraftError` naming each problem."""
    try:
        spec = PersonaSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise DraftError(
            "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        ) from None
    leaks = personal_data_in(spec.model_dump(mode="json"))
    if leaks:
        raise DraftError("personal data or masked placeholders left in: " + "; ".join(leaks))
    return spec


def to_yaml(spec: PersonaSpec) -> str:
    """The draft as persona YAML; optional lists left empty are left out (hidden facts stay,
    as a place for the trainer to add them)."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data = {k: v for k, v in data.items() if v != [] or k == "hidden_facts"}
    if not data.get("hidden_facts"):
        data["hidden_facts"] = []
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=88)


def suggest_id(
    data: Mapping[str, Any], seed: str, taken: Callable[[str], bool] = lambda _: False
) -> str:
    """A free persona id like ``real_irate_broadband_3f2a``."""
    base = f"real_{data.get('archetype', 'other')}_{_slug(str(data['scenario']['product']))}"[:56]
    digest = hashlib.sha256(seed.encode()).hexdigest()
    for n in range(0, 40, 4):
        pid = f"{base}_{digest[n : n + 4]}"
        if SLUG.match(pid) and not taken(pid):
            return pid
    raise DraftError("No free persona id: type one in the New id box.")


# --- wording -----------------------------------------------------------------------------------
_REWORD_PROBLEM = (
    "Rewrite this as one or two plain sentences, in the third person, saying what went "
    "wrong for the customer. Do not add details. Reply with the sentences only."
)
_REWORD_OPENING = (
    "Rewrite this customer's first chat message so it reads naturally, in their voice, "
    "keeping what they said and how they feel. Do not add details. Reply with the message only."
)


def _acceptable(new: str | None, old: str) -> str | None:
    """A reworded text if it is usable: not empty, not much longer, no personal data, no
    new numbers, and not the model talking about the task."""
    if not new:
        return None
    new = new.strip().strip('"“”').strip()
    if not new or len(new) > 2 * len(old) + 40 or "\n\n" in new:
        return None
    if has_placeholder(new) or find_pii(new):
        return None
    if set(re.findall(r"\d+", new)) - set(re.findall(r"\d+", old)):
        return None
    if re.match(r"(?i)(sure|here is|here's|rewritten|as an ai|certainly)\b", new):
        return None
    return new


def phrase_with(model: BaseChatModel) -> Phraser:
    """A :data:`Phraser` over a chat model (the embedded one, or any other)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    def phrase(instruction: str, text: str) -> str | None:
        try:
            reply = model.invoke([SystemMessage(content=instruction), HumanMessage(content=text)])
        except Exception:  # wording is a nicety: the extracted text stands without it
            return None
        content = reply.content
        return content if isinstance(content, str) else None

    return phrase


def _phrase(data: dict[str, Any], phraser: Phraser) -> bool:
    changed = False
    problem = data["scenario"]["problem"]
    new = _acceptable(phraser(_REWORD_PROBLEM, problem), problem)
    if new:
        data["scenario"] = {**data["scenario"], "problem": new}
        changed = True
    opening = data["opening_line"]
    new = _acceptable(phraser(_REWORD_OPENING, opening), opening)
    if new:
        data["opening_line"] = new
        changed = True
    return changed


_LLM_PROMPT = """You turn a real customer-service chat into a practice persona for training agents.
Personal data in it is already masked as [NAME], [EMAIL], [PHONE] and so on: never write any of it
back, and invent nothing that identifies a real person. Keep the facts the customer gave.

Return one JSON object with exactly these keys: name, archetype (one of: $archetypes),
difficulty (easy, medium or hard), scenario {company, product, problem, channel: "chat"},
backstory, trainee_brief (what the agent knows beforehand; no hidden facts), opening_line (the
customer's first message, without masked data), speaking_style, emotional_baseline (0-10),
escalates_when (list), softens_when (list), hidden_facts (list of {id: a lowercase slug, fact,
topics: words an agent's question would touch}), resolution {description, satisfied_by (short
words an offer would contain), example_offer}.

A draft extracted by rules, to improve on:
$draft

The conversation:
$transcript"""


def _json_object(text: str) -> dict[str, Any]:
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise DraftError("the model's reply held no JSON object")
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise DraftError(f"the model's JSON didn't parse: {exc.msg}") from None
    if not isinstance(data, dict):
        raise DraftError("the model's reply was not a JSON object")
    return data


def llm_draft(
    model: BaseChatModel, turns: Sequence[Mapping[str, str]], extracted: Mapping[str, Any]
) -> dict[str, Any]:
    """The persona as a capable model writes it, from the masked conversation and the
    extracted draft; raises :class:`DraftError` if its answer isn't a valid persona."""
    from string import Template

    from langchain_core.messages import HumanMessage

    transcript = "\n".join(f"{t['role'].title()}: {t['text']}" for t in turns)
    prompt = Template(_LLM_PROMPT).substitute(
        archetypes=", ".join(a.value for a in Archetype),
        draft=json.dumps(extracted, ensure_ascii=False, indent=1),
        transcript=transcript[:12000],
    )
    try:
        reply = model.invoke([HumanMessage(content=prompt)])
    except Exception as exc:
        raise DraftError(f"the model could not be reached: {exc}") from None
    content = reply.content if isinstance(reply.content, str) else ""
    data = _json_object(content)
    validate_draft(data)
    return data


DraftMode = Literal["llm", "phrase", "extract"]


def draft_mode(settings: Settings) -> DraftMode:
    """``llm`` with a capable configured model (the OpenAI-compatible provider with the
    judge on, as for grading); ``phrase`` on the embedded model; ``extract`` otherwise."""
    if settings.provider == "openai" and settings.judge:
        return "llm"
    if settings.provider == "local":
        return "phrase"
    return "extract"


def draft_persona(
    turns: Sequence[Mapping[str, str]],
    feedback: Mapping[str, Any] | None = None,
    *,
    seed: str = "",
    mode: DraftMode = "extract",
    model: BaseChatModel | None = None,
    taken: Callable[[str], bool] = lambda _: False,
) -> Draft:
    """A validated draft persona from a masked conversation (see the module docstring)."""
    data = extract(turns, feedback, seed)
    data = scrub(data, str(data["name"]).split()[0])
    notes = [
        "Drafted from a real conversation: check every field, then Save draft, run the "
        "probe check and publish.",
    ]
    source: DraftSource = "extracted"
    if mode == "llm" and model is not None:
        try:
            data = llm_draft(model, turns, data)
            source = "llm"
        except DraftError as exc:
            notes.append(
                f"The configured model's draft was not used ({exc}); this one is extracted."
            )
    elif mode == "phrase" and model is not None and _phrase(data, phrase_with(model)):
        source = "extracted+phrased"
    if not data["hidden_facts"]:
        notes.append(
            "No hidden facts were found: add what the customer knows but only says when asked."
        )
    spec = validate_draft(data)
    return Draft(
        spec, to_yaml(spec), suggest_id(data, seed or spec.opening_line, taken), source, notes
    )


def draft_with_settings(
    settings: Settings,
    turns: Sequence[Mapping[str, str]],
    feedback: Mapping[str, Any] | None = None,
    *,
    seed: str = "",
    taken: Callable[[str], bool] = lambda _: False,
) -> Draft:
    """:func:`draft_persona` in the mode ``settings`` allow, with the configured model
    (``rapport import --draft-persona``); no model to be had means the extracted draft."""
    from sim.providers import ProviderError, get_chat_model

    mode = draft_mode(settings)
    model: BaseChatModel | None = None
    if mode != "extract":
        try:
            model = get_chat_model(settings)
        except (ProviderError, OSError, RuntimeError):
            mode = "extract"
    return draft_persona(turns, feedback, seed=seed, mode=mode, model=model, taken=taken)
