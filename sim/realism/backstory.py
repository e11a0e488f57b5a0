"""Backstory recitation: a run of biographical facts, or the persona's own text, unasked."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.persona import Persona
from sim.postprocess import sentence_key
from sim.realism.kinds import Finding
from sim.realism.narration import _I
from sim.realism.thanks import _THANKS

if TYPE_CHECKING:
    from sim.realism.checks import RealismContext


# --------------------------------------------------------------------------------------------
# Backstory recitation
# --------------------------------------------------------------------------------------------

_CONTRACTIONS = (
    ("n't", " not"),
    ("'m", " am"),
    ("'re", " are"),
    ("'ve", " have"),
    ("'ll", " will"),
    ("'d", " would"),
    ("'s", ""),
)
_FIRST_PERSON = {
    "she": "i",
    "he": "i",
    "her": "my",
    "his": "my",
    "him": "me",
    "herself": "myself",
    "himself": "myself",
}
_AFTER_I = {"is": "am", "has": "have"}


def _tokens(text: str, name: str | None = None) -> list[str]:
    """Lower-case word tokens with contractions spelled out; with ``name``, third-person text
    about that person turned to first person ("Helen is 52" -> "i am 52")."""
    t = text.lower().replace("’", "'").replace("‘", "'")
    for short, long in _CONTRACTIONS:
        t = t.replace(short, long)
    toks = re.findall(r"[a-z0-9£$€]+", t)
    if name is None:
        return toks
    own = {n.lower() for n in name.split()[:1]}
    out: list[str] = []
    for tok in toks:
        tok = "i" if tok in own else _FIRST_PERSON.get(tok, tok)
        if out and out[-1] == "i":
            tok = _AFTER_I.get(tok, tok)
        out.append(tok)
    return out


_JOB_WORDS = (
    r"teacher|engineer|editor|coordinator|technician|physiotherapist|driver|plumber|nurse|doctor|"
    r"electrician|builder|designer|developer|manager|accountant|consultant|student|graduate|"
    r"lawyer|solicitor|mechanic|chef|cleaner|carpenter|joiner|tradesman|freelancer|secretary|"
    r"administrator|officer|worker|pensioner|pharmacist|architect|analyst|programmer|writer|"
    r"artist|photographer|musician|farmer|shopkeeper|owner|director|clerk|salesman|saleswoman|"
    r"hairdresser|carer|receptionist|retiree|therapist|scientist|researcher|professor|lecturer"
)
_NUMBER_WORDS = (
    r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|eighteen|nineteen|twenties|thirties|"
    r"forties|fifties|sixties|seventies|eighties|nineties"
)
_BIO_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "name",
        re.compile(r"\bmy\s+name(?:'s|\s+is)\b|\bi(?:'m|\s+am)\s+called\b", _I),
    ),
    (
        "age",
        re.compile(
            r"\bi(?:'m|\s+am)\s+(?:\d{1,3}|(?:" + _NUMBER_WORDS + r")(?:-\w+)?)"
            r"(?=\s*(?:[,.;!]|$|and\b|years?\b|now\b|this\s+year\b|so\b))"
            r"|\b\d{1,3}[\s-]*years?[\s-]*old\b|\bi(?:'m|\s+am)\s+in\s+my\s+(?:"
            + _NUMBER_WORDS
            + r"|\d0s)\b",
            _I,
        ),
    ),
    (
        "job",
        re.compile(
            rf"\bi(?:'m|\s+am)\s+(?:an?\s+)(?:[\w-]+\s+){{0,3}}?(?:{_JOB_WORDS})s?\b"
            rf"|,\s*an?\s+(?:[\w-]+\s+){{0,3}}?(?:{_JOB_WORDS})s?\b"
            r"|\bi\s+work\s+(?:as|for|at|in)\b|\bi\s+(?:teach|run\s+(?:a|my\s+own|my))\b"
            r"|\bi(?:'m|\s+am)\s+(?:recently\s+|now\s+)?(?:retired|self-employed|freelance|unemployed)\b"
            r"|\bmy\s+(?:job|career|profession|occupation)\s+(?:is|as)\b|\bi(?:'ve|\s+have)\s+just\s+graduated\b",
            _I,
        ),
    ),
    (
        "place",
        re.compile(
            r"\bi\s+live\s+(?:in|at|on|near)\b|\bi(?:'m|\s+am)\s+(?:originally\s+)?from\s+[A-Z]"
            r"|\bi(?:'m|\s+am)\s+based\s+(?:in|at|near|out\s+of)\b",
            0,
        ),
    ),
    (
        "family",
        re.compile(
            r"\bi(?:'m|\s+am)\s+(?:happily\s+)?(?:married|divorced|single|widowed|a\s+widow(?:er)?|engaged)\b"
            r"|\bi\s+have\s+(?:\w+\s+)?(?:kids|children|grandchildren|sons?|daughters?|grandsons?|granddaughters?)\b"
            r"|\b(?:the\s+)?eldest\s+of\b|\bsiblings\b|\bi\s+live\s+(?:alone|on\s+my\s+own|with\s+my)\b"
            r"|\b(?:mother|mum|father|dad)\s+of\s+(?:two|three|four|\d)\b",
            _I,
        ),
    ),
)
_ASKED: dict[str, re.Pattern[str]] = {
    "name": re.compile(
        r"\byour\s+(?:full\s+)?name\b|\bwho\s+(?:am\s+i|i'm|i\s+am)\s+(?:speaking|talking|chatting)\b"
        r"|\bwho(?:'s|\s+is)\s+(?:this|speaking)\b|\bwho\s+are\s+you\b|\bintroduce\s+yourself\b"
        r"|\baccount\s+holder\b|\bare\s+you\s+(?:the|mr|mrs|ms|miss)\b",
        _I,
    ),
    "age": re.compile(r"\bhow\s+old\b|\byour\s+age\b|\bdate\s+of\s+birth\b|\bborn\b", _I),
    "job": re.compile(
        r"\bwhat\s+do\s+you\s+do\b|\byour\s+(?:job|work|business|occupation|profession|employer)\b"
        r"|\bfor\s+a\s+living\b|\bwork\s+from\s+home\b",
        _I,
    ),
    "place": re.compile(
        r"\bwhere\s+(?:do\s+you\s+live|are\s+you|is\s+your|abouts)\b"
        r"|\byour\s+(?:address|postcode|location|area|town|city)\b",
        _I,
    ),
    "family": re.compile(
        r"\byour\s+(?:family|wife|husband|partner|kids|children|parents)\b|\blive\s+(?:alone|with)\b",
        _I,
    ),
}
_ABOUT_YOU = re.compile(r"\babout\s+yourself\b|\bwho\s+you\s+are\b", _I)
_PLACE_WORD = re.compile(r"\b(?:in|from|to|at|near)\s+((?:[A-Z][a-z]+)(?:\s+[A-Z][a-z]+)?)")


@dataclass(frozen=True)
class _Profile:
    """What the checks need from a persona's own text, worked out once per persona."""

    first: str  # the persona's first name
    grams: frozenset[tuple[str, ...]]  # backstory 4-grams (first person) not in public text
    places: tuple[str, ...]  # places the backstory names that the public text does not
    age: str | None
    catchphrases: frozenset[str]  # quoted in the speaking style: allowed to recur
    habitual_thanks: bool  # the opening line thanks already: thanks are this persona's manner


_GRAM = 4


def _grams(tokens: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + _GRAM]) for i in range(len(tokens) - _GRAM + 1)}


@functools.lru_cache(maxsize=128)
def _profile_of(name: str, backstory: str, public: str, style: str, opening: str) -> _Profile:
    story = _tokens(backstory, name)
    public_grams = _grams(_tokens(public, name))
    grams = frozenset(_grams(story) - public_grams)
    names = set(name.split())
    places = tuple(
        sorted(
            {
                m.group(1)
                for m in _PLACE_WORD.finditer(backstory)
                if m.group(1) not in public and not (set(m.group(1).split()) & names)
            }
        )
    )
    m = re.search(r"\bis\s+(\d{1,3})\b", backstory)
    quoted = re.findall(r"[\"“]([^\"”]{1,60})[\"”]", style)
    return _Profile(
        first=name.split()[0],
        grams=grams,
        places=places,
        age=m.group(1) if m else None,
        catchphrases=frozenset(sentence_key(q) for q in quoted if sentence_key(q)),
        habitual_thanks=bool(_THANKS.search(opening)),
    )


def _profile(persona: Persona) -> _Profile:
    s = persona.scenario
    public = "\n".join([s.company, s.product, s.problem, persona.opening_line])
    return _profile_of(
        persona.name, persona.backstory, public, persona.speaking_style, persona.opening_line
    )


def _bio_facts(sentence: str, profile: _Profile) -> set[str]:
    found = {cat for cat, rule in _BIO_RULES if rule.search(sentence)}
    if re.search(rf"\b(?:i(?:'m|\s+am)|this\s+is)\s+{re.escape(profile.first)}\b", sentence, _I):
        found.add("name")
    own_age = profile.age and rf"\b(?:i(?:'m|\s+am)\s+|aged\s+){profile.age}\b"
    if own_age and re.search(own_age, sentence, _I):
        found.add("age")
    if any(re.search(rf"\b{re.escape(p)}\b", sentence) for p in profile.places):
        found.add("place")
    return found


def _coverage(sentence: str, profile: _Profile, name: str) -> tuple[int, int]:
    """(tokens of the sentence inside a 4-gram shared with the backstory, tokens)."""
    toks = _tokens(sentence, name)
    covered = [False] * len(toks)
    for i in range(len(toks) - _GRAM + 1):
        if tuple(toks[i : i + _GRAM]) in profile.grams:
            for j in range(i, i + _GRAM):
                covered[j] = True
    return sum(covered), len(toks)


OVERLAP_TOKENS = 16
"""Backstory tokens a reply may copy (in 4-grams) before it counts as reciting: one natural
sentence that echoes the brief is allowed, two are a recital."""
BIO_RUN = 3
"""Distinct biographical facts nobody asked for (name, age, job, place, family) that make a
run; two when the agent asked whether the customer is a real person."""


def _backstory(sentences: Sequence[str], ctx: RealismContext) -> Finding | None:
    profile = ctx.profile
    persona = ctx.persona
    copied: list[str] = []
    total = 0
    for s in sentences:
        hit, n = _coverage(s, profile, persona.name)
        if n and hit / n >= 0.5:
            copied.append(s)
            total += hit
    if total >= OVERLAP_TOKENS:
        return Finding("recites_backstory", f"copies {total} words of the backstory", tuple(copied))
    asked = ctx.asked
    by_fact: dict[str, list[str]] = {}
    for s in sentences:
        for fact in _bio_facts(s, profile) - asked:
            by_fact.setdefault(fact, []).append(s)
    need = 2 if ctx.probe is not None and ctx.probe.detail == "are_you_ai" else BIO_RUN
    if len(by_fact) >= need:
        carrying = tuple(dict.fromkeys(s for ss in by_fact.values() for s in ss))
        return Finding("recites_backstory", "unasked: " + ", ".join(sorted(by_fact)), carrying)
    return None
