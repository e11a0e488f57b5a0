"""Reply checks: every reason a cleaned customer reply can't be shown (:func:`check_reply`:
out of character, talks about its instructions, leaks a locked hidden fact, goes along with
the probe) and :func:`repair`, which drops offending sentences when that is enough."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from common.text import stem
from sim.guard.probes import _AGENT_NOUN, _I, Probe, _normalise
from sim.persona import HiddenFact, PersonaSpec
from sim.postprocess import role_break

ViolationKind = Literal[
    "empty",
    "says_ai",
    "speaks_as_agent",
    "mentions_instructions",
    "leaks_fact",
    "complies_off_topic",
]


@dataclass(frozen=True)
class Violation:
    """One reason a customer reply can't be shown."""

    kind: ViolationKind
    detail: str  # the fact id leaked, the matched phrase, ...


# --------------------------------------------------------------------------------------------
# Reply checks
# --------------------------------------------------------------------------------------------

_INSTRUCTIONS_RE = re.compile(
    r"\b(?:my|your|previous|prior|original|initial|new|above|system|hidden|secret)\s+(?:instructions|prompt)\b"
    r"|\bsystem\s+prompt\b|\brubric\b|\brole[- ]?play(?:ing|ed|s)?\b"
    r"|\bmy\s+(?:role|character|persona|script)\b(?!\s+(?:at|in)\b)"
    r"|\bi(?:'m| am)\s+(?:just\s+|only\s+)?(?:playing|acting out|portraying|simulating|role-?playing)\s+(?:a|an|the|this|my)\b"
    r"|\bi(?:'m| am)\s+(?:just\s+|only\s+)?simulating\b"
    r"|\b(?:customer\s+)?simulator\b|\bsimulat(?:ion|ed\s+customer)\b"
    r"|\b(?:the|my)\s+scenario\b(?!\s+(?:where|in which|that|when|if)\b)"
    r"|\b(?:the\s+|my\s+|stage\s+)?director(?:'s)?\s+(?:notes?|says|said|told|wants|instructs?|instructions?)\b"
    r"|\bstage\s+directions?\b|\bthe\s+trainee\b|\bhidden\s+facts?\b"
    r"|\b(?:in|out\s+of|break(?:ing)?|stay(?:ing)?)\s+character\b"
    r"|\b(?:training|practice)\s+(?:exercise|session|scenario|simulation)\b"
    r"|\bfictional\b|\bnot\s+a\s+real\s+customer\b",
    _I,
)
_NOT_REAL_RE = re.compile(
    r"\bi(?:'m| am)\s+not\s+(?:a\s+)?(?:real|human|a\s+real\s+person|a\s+person)\b"
    r"|\bi(?:'m| am)\s+(?:just\s+)?(?:a\s+)?(?:bot|robot|computer\s+program|program)\b",
    _I,
)

_VERSE_DETAILS = frozenset({"poem", "song", "haiku", "limerick", "sonnet", "rap"})
_REPAIRABLE_COMPLIANCE = frozenset({"arithmetic", "injection", "role_swap"})

_ROLE_SWAP_OK_RE = re.compile(
    rf"\b(?:sure|okay|ok|alright|all right|fine|yes|great|happy to|why not|deal)\b[^.!?]{{0,30}}\bi(?:'ll| will)\s+(?:be|play)\s+the\s+{_AGENT_NOUN}"
    rf"|\bi(?:'m| am)\s+(?:now\s+)?the\s+{_AGENT_NOUN}\s*(?:now|here|today)?\s*[,.!]"
    rf"|\bi(?:'m| am)\s+now\s+the\s+{_AGENT_NOUN}"
    rf"|(?:^|[.!?]\s+)as\s+(?:the|your)\s+{_AGENT_NOUN}\s*,"
    rf"|\b(?:let's|ok(?:ay)?,?)\s+(?:switch|swap)(?:\s+(?:roles|places))?\s*[.!,]"
    rf"|\byou(?:'re| are)\s+(?:now\s+)?the\s+customer\s+now\b"
    rf"|\b(?:i'll|let me)\s+play\s+the\s+{_AGENT_NOUN}",
    _I,
)
_INJECTION_OK_RE = re.compile(
    r"\b(?:ok(?:ay)?|sure|alright|fine|understood),?\s+(?:i(?:'m| am|'ll| will)\s+(?:now\s+)?)?ignor(?:e|ing)\b"
    r"|(?:^|[.!?]\s+)understood\s*(?:[.!]|$|,?\s+(?:i(?:'ll| will)|from now|ignoring|here))"
    r"|\bas\s+(?:instructed|requested|you\s+(?:wish|command|requested|asked))\b"
    r"|\b(?:new\s+)?instructions\s+(?:accepted|received|acknowledged|updated|noted)\b"
    r"|(?:^|[.!?]\s+)(?:sure|certainly|of course|absolutely|okay|ok)[!,.]?\s+here(?:'s| is| are)\b"
    r"|\bi(?:'m| am)\s+now\s+(?:an?\s+|your\s+)?(?:\w+\s+)?(?:assistant|ai|chatbot|bot|model|dan)\b"
    r"|\b(?:developer|dan|god)\s+mode\s+(?:enabled|activated|on|engaged)\b|\bjailbroken\b",
    _I,
)
_JOKE_OK_RE = re.compile(
    r"\bhere(?:'s| is)\s+(?:a|one|my)\s+(?:\w+\s+)?joke\b|\bwhy\s+did\s+the\b|\bknock,?\s+knock\b"
    r"|\bwhat\s+do\s+you\s+call\s+a\b",
    _I,
)
_SURE_START_RE = re.compile(
    r"^\W*(?:sure|certainly|of course|absolutely|happy to|no problem|here(?:'s| is| you go| goes)|okay,?\s+here)\b",
    _I,
)
_REFUSAL_RE = re.compile(r"\b(?:not|no|never|but|won't|can't|don't|isn't|wouldn't)\b|n't\b|\?", _I)
_VERSE_INTRO_RE = re.compile(
    r"\bhere(?:'s| is| goes)\s+(?:a|my|your|the|one)?\s*(?:little\s+|short\s+)?(?:poem|song|haiku|limerick|verse|rhyme|sonnet|rap)\b",
    _I,
)
_CONTENT_RE = re.compile(
    r"```|\bdef\s+\w+\(|\bfunction\s+\w*\(|\bimport\s+\w+|\bprint\(|\bconsole\.log\("
    r"|\bthe\s+capital\s+of\s+\w+(?:\s+\w+)?\s+is\b|\bingredients?\s*:|\bpreheat\b|\bonce upon a time\b"
    r"|\bin\s+(?:french|spanish|german|italian|portuguese)\s*(?:,|that's|it's|it is|is|:)",
    _I,
)

_SENT_SPLIT = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\s*\n\s*")
_WORD = re.compile(r"[A-Za-z0-9']+")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_SPLIT.split(text) if s and s.strip()]


def split_sentences(text: str) -> list[str]:
    """A reply's sentences (and lines), as every check and repair here splits them."""
    return _sentences(_normalise(text))


def _looks_like_verse(reply: str) -> bool:
    lines = [ln.strip() for ln in reply.splitlines() if ln.strip()]
    if len(lines) >= 3 and sum(ln.endswith("?") for ln in lines) <= 1:
        return True
    if reply.count(" / ") >= 2 or _VERSE_INTRO_RE.search(reply):
        return True
    # end rhymes: three or more short clauses whose last words share their endings
    ends = [
        w[-1].lower()
        for c in re.split(r"[,.;!?\n]+", reply)
        if (w := re.findall(r"[A-Za-z']+", c)) and len(w) <= 10
    ]
    rhymes = sum(
        1 for a, b in itertools.pairwise(ends) if a != b and len(a) > 2 and a[-3:] == b[-3:]
    )
    return len(ends) >= 4 and rhymes >= 2


def _complies(reply: str, probe: Probe) -> str | None:
    """The phrase showing the reply went along with the probe, if any."""
    if probe.answer is not None:
        for tok in re.findall(r"-?\d[\d,]*(?:\.\d+)?", reply):
            if tok.replace(",", "").rstrip(".") == probe.answer:
                return tok
    if "```" in reply:
        return "```"
    if probe.kind == "role_swap":
        m = _ROLE_SWAP_OK_RE.search(reply)
        return m.group(0).strip() if m else None
    if probe.kind == "injection":
        m = _INJECTION_OK_RE.search(reply)
        return m.group(0).strip() if m else None
    if probe.kind != "off_topic" or probe.detail == "arithmetic":
        return None
    if probe.detail in _VERSE_DETAILS and _looks_like_verse(reply):
        return "verse"
    if probe.detail == "joke" and (m := _JOKE_OK_RE.search(reply)):
        return m.group(0)
    first = (_sentences(reply) or [""])[0]
    if _SURE_START_RE.search(first) and not _REFUSAL_RE.search(first):
        return first
    m = _CONTENT_RE.search(reply)
    return m.group(0) if m else None


# --- hidden-fact leaks ------------------------------------------------------------------------

_STOPWORDS_TEXT = """
    about above across after again against almost along already also although always among another
    anyone anything anyway around away back because been before behind being below beside besides
    between both came cannot could couldn didn does doesn doing done down during each either else
    even ever every everyone everything from further gave gets getting give given goes going good
    have haven having here hers herself himself into itself just know knew last least less like made
    make many maybe might more most much must myself near never next none nothing once only onto
    other others ought ours over part perhaps please quite rather really said same says seem seems
    shall should since some someone something soon still such sure take than that that's their
    theirs them themselves then there these they thing things this those though through thus time
    told took toward towards under unless until upon very want wanted well went were what whatever
    when whenever where which while whom whose will with within without would your yours yourself
    yourselves year years week weeks today yesterday tomorrow think need needs says work working
    days happen happened turn turned left right second full different completely properly
    tried tries trying asked
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_TOKEN = re.compile(r"[\w£€$%][\w£€$%,.:/'-]*", re.UNICODE)


# common.text.stem as the leak check has always matched: "es" words lose only their "s"
# before the final "e" goes, and "ss" stays ("address")
_stem = partial(stem, suffixes=("ing", "ed", "s"), keep_ss=True, trim_e=True)


_STOP_STEMS = frozenset(_stem(w) for w in _STOPWORDS)


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", _normalise(text).lower())


def _number_keys(text: str) -> set[str]:
    """Normalised numbers and codes in ``text`` (anything with a digit), plus their long parts."""
    keys: set[str] = set()
    for raw in _TOKEN.findall(_normalise(text)):
        tok = raw.rstrip(",.:/'-").lower()
        if not any(c.isdigit() for c in tok):
            continue
        tok = re.sub(r"[£€$%]", "", tok)
        tok = re.sub(r"(?<=\d),(?=\d{3}\b)", "", tok)
        tok = re.sub(r"(?<=\d)(?:st|nd|rd|th)$", "", tok)
        tok = re.sub(r"'s$", "", tok)
        keys.add(tok)
        keys.update(
            p for p in re.split(r"[-/]", tok) if len(p) >= 3 and any(c.isdigit() for c in p)
        )
    return keys


def _significant_number(key: str) -> bool:
    # Three characters or more ("600", "2400", "ngb-intl-88231645"): bare two-digit numbers
    # ("30 minutes", "the 10th") are too common in ordinary complaints to count as a leak.
    return len(key) >= 3


def public_text(persona: PersonaSpec) -> str:
    """Everything about the persona the customer may say freely (no hidden facts)."""
    s = persona.scenario
    return "\n".join(
        [
            persona.name,
            s.company,
            s.product,
            s.problem,
            persona.backstory,
            persona.opening_line,
            persona.speaking_style,
            persona.trainee_brief,
            persona.resolution.description,
        ]
    )


@dataclass(frozen=True)
class _FactMarks:
    fact_id: str
    numbers: frozenset[str]
    words: frozenset[str]


def _fact_marks(persona: PersonaSpec, facts: Sequence[HiddenFact]) -> list[_FactMarks]:
    public = public_text(persona)
    public_numbers = _number_keys(public)
    public_stems = {_stem(w) for w in _words(public)}
    marks = []
    for f in facts:
        numbers = {
            k for k in _number_keys(f.fact) if _significant_number(k) and k not in public_numbers
        }
        words = {
            _stem(w)
            for w in _words(f.fact)
            if len(w) >= 4
            and w not in _STOPWORDS
            and _stem(w) not in _STOP_STEMS
            and _stem(w) not in public_stems
        }
        marks.append(_FactMarks(f.id, frozenset(numbers), frozenset(words)))
    return marks


def _leaks(reply: str, marks: Sequence[_FactMarks]) -> list[tuple[str, frozenset[str]]]:
    """(fact id, the tokens that gave it away) for every locked fact the reply reveals."""
    numbers = _number_keys(reply)
    stems = {_stem(w) for w in _words(reply) if len(w) >= 4}
    out = []
    for m in marks:
        hit_numbers = m.numbers & numbers
        hit_words = m.words & stems
        if hit_numbers or len(hit_words) >= 3:
            out.append((m.fact_id, hit_numbers | hit_words))
    return out


# role_break's reasons; anything new it learns to report counts as out of character.
_BREAK_KINDS: dict[str, ViolationKind] = {
    "says_ai": "says_ai",
    "speaks_as_agent": "speaks_as_agent",
}


def check_reply(
    reply: str,
    persona: PersonaSpec,
    locked_facts: Sequence[HiddenFact] = (),
    probe: Probe | None = None,
) -> list[Violation]:
    """Every reason this cleaned customer reply can't be shown; empty list if it holds."""
    text = _normalise(reply)
    whole = role_break(text)
    if whole == "empty":
        return [Violation("empty", "")]
    found: list[Violation] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: ViolationKind, detail: str) -> None:
        if (kind, detail) not in seen:
            seen.add((kind, detail))
            found.append(Violation(kind, detail))

    for sentence in _sentences(text):
        reason = role_break(sentence)
        if reason is not None:
            add(_BREAK_KINDS.get(reason, "speaks_as_agent"), sentence)
    if whole is not None and not any(v.kind == _BREAK_KINDS.get(whole) for v in found):
        add(_BREAK_KINDS.get(whole, "speaks_as_agent"), text[:120])
    m = _NOT_REAL_RE.search(text)
    if m:
        add("says_ai", m.group(0))
    for m in _INSTRUCTIONS_RE.finditer(text):
        add("mentions_instructions", m.group(0))
    for fact_id, _ in _leaks(text, _fact_marks(persona, locked_facts)):
        add("leaks_fact", fact_id)
    if probe is not None:
        phrase = _complies(text, probe)
        if phrase is not None:
            add("complies_off_topic", phrase)
    return found


def repair(
    reply: str,
    violations: Sequence[Violation],
    persona: PersonaSpec,
    locked_facts: Sequence[HiddenFact] = (),
    probe: Probe | None = None,
) -> str | None:
    """Cheap fix: drop the offending sentences; return the rest if it then passes check_reply and
    still has at least 4 words, else None (caller regenerates)."""
    kinds = {v.kind for v in violations}
    if not violations:
        return reply
    if "empty" in kinds:
        return None
    if "complies_off_topic" in kinds and probe is not None:
        repairable = probe.detail in _REPAIRABLE_COMPLIANCE or probe.kind in _REPAIRABLE_COMPLIANCE
        if not repairable:
            return None  # verse, jokes, code, recipes: the whole reply is the off-topic content
    text = _normalise(reply)
    marks = _fact_marks(persona, locked_facts)
    leaked = {v.detail for v in violations if v.kind == "leaks_fact"}
    leak_tokens = {t for fid, toks in _leaks(text, marks) if fid in leaked for t in toks}

    def ok(sentence: str) -> bool:
        return not check_reply(sentence, persona, locked_facts, probe)

    kept = [s for s in _sentences(text) if ok(s)]
    candidate = " ".join(kept)
    if check_reply(candidate, persona, locked_facts, probe) and leak_tokens:
        # a leak spread over several sentences: drop every sentence that carries part of it
        def carries(s: str) -> bool:
            return bool(
                (_number_keys(s) | {_stem(w) for w in _words(s) if len(w) >= 4}) & leak_tokens
            )

        kept = [s for s in kept if not carries(s)]
        candidate = " ".join(kept)
    if len(_WORD.findall(candidate)) < 4 or check_reply(candidate, persona, locked_facts, probe):
        return None
    return candidate
