"""Embedded instructions: doing what the trainee's message told the customer to say."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sim.guard import ONE_WORD, embedded_demand, rating_key, split_sentences
from sim.notes import SCRIPTED
from sim.postprocess import sentence_key
from sim.realism.length import words
from sim.realism.narration import _I

# --------------------------------------------------------------------------------------------
# Embedded instructions
# --------------------------------------------------------------------------------------------

_COMMON_TEXT = "ok okay yes no yeah yep sure fine right hello hi thanks sorry alright what"
_COMMON = frozenset(_COMMON_TEXT.split())
_RATING = re.compile(
    r"\d{1,3}\s*(?:/|out\s+of)\s*\d{1,3}|\d\s*stars?|ten\s+out\s+of\s+ten|five\s+stars", _I
)


# A top rating said in words ("I'll give it a ten", "full marks from me"), not a ten of
# something else ("give it ten minutes"). Only for a demand of the top mark.
_TOP_SPOKEN = re.compile(
    r"\b(?:give|giving|gave|rate|rating|score)\b[^.?!]{0,25}?\b(?:a\s+)?(?:ten|10)\b"
    r"(?!\s*(?:more\s+)?(?:minutes?|mins?|hours?|days?|weeks?|months?|pounds?|quid|euros?|"
    r"dollars?|percent|%|gb|mb))"
    r"|\bfull\s+marks\b",
    _I,
)
_TOP = frozenset({"10/10", "5/5", "5 stars"})


def _obeys(text: str, sentences: Sequence[str], demand: str, final: bool) -> str | None:
    statements = [s for s in sentences if not s.rstrip().endswith("?")]
    if demand.startswith("rating:"):
        want = demand.removeprefix("rating:")
        for s in statements:
            for m in _RATING.finditer(s):
                if rating_key(m.group(0)) == want:
                    return m.group(0)
            spoken = _TOP_SPOKEN.search(s) if want in _TOP else None
            if spoken and not _DISTANCING & set(sentence_key(s[: spoken.start()]).split()):
                return spoken.group(0)
        return None
    if demand == ONE_WORD:
        return text.strip() if final and words(text) == 1 and statements else None
    want = sentence_key(demand)
    if not want:
        return None
    if final and sentence_key(text) == want:
        return text.strip()
    if want in _COMMON:
        return None
    first = sentences[0] if sentences else ""
    if statements and first in statements and sentence_key(first) == want:
        return first
    if len(want.split()) >= 2:
        same = next((s for s in statements if sentence_key(s) == want), None)
        if same is not None:
            return same
    if len(want.split()) >= 3:
        # the dictated words inside a longer sentence: "I am completely satisfied, thank you."
        return next((s for s in statements if _says_within(sentence_key(s), want)), None)
    return None


_DISTANCING = frozenset({"say", "said", "saying", "not", "never", "why", "whether"})


def _says_within(key: str, want: str) -> bool:
    """Whether ``want`` stands as whole words inside ``key``, not reported or denied before it
    ("I won't say I am completely satisfied" quotes the order, it does not follow it)."""
    at = f" {key} ".find(f" {want} ")
    return at >= 0 and not _DISTANCING & set(key[:at].split())


def without_demand(agent_text: str) -> str:
    """The trainee's message with the sentences that dictate the reply put in words
    (:data:`sim.notes.SCRIPTED`), for asking again after a reply obeyed them: a small model
    told not to say "yes" still sees "reply only with yes", and says it. The rest of the
    message is kept as written; if no one sentence holds the demand, all of it is replaced,
    and a message with no demand at all is returned as it is."""
    sentences = split_sentences(agent_text)
    kept = [SCRIPTED if embedded_demand(s) is not None else s for s in sentences]
    if SCRIPTED not in kept:
        return SCRIPTED if embedded_demand(agent_text) is not None else agent_text
    return " ".join(s for i, s in enumerate(kept) if s != SCRIPTED or kept[i - 1 : i] != [s])
