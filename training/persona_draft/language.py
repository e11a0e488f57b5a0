"""The customer's language: how distressed they sound, and which archetype fits."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sim.persona import Archetype
from training.masking import (
    PLACEHOLDER_RE,
)

if TYPE_CHECKING:
    pass


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
