"""The turn's context, the repetition check, and the checks and repairs run on every reply."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.guard import ONE_WORD, Probe, embedded_demand, split_sentences
from sim.persona import Persona
from sim.postprocess import opening_key, sentence_key, word_count
from sim.realism.backstory import _ABOUT_YOU, _ASKED, _backstory, _Profile, _profile
from sim.realism.instructions import _obeys
from sim.realism.kinds import _HINTS, KINDS, Finding, Granted
from sim.realism.length import length_bounds, words
from sim.realism.narration import _narrates
from sim.realism.thanks import _ungranted

# --------------------------------------------------------------------------------------------
# The context and the checks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealismContext:
    """What the checks need to know about this turn.

    ``earlier`` are the customer's earlier replies in the session, opening line first;
    ``granted`` is None when no director runs the conversation (thanks are then not checked).
    """

    persona: Persona
    agent_text: str = ""
    earlier: Sequence[str] = ()
    probe: Probe | None = None
    granted: Granted | None = None
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def profile(self) -> _Profile:
        return _profile(self.persona)

    @property
    def bounds(self) -> tuple[int, int]:
        if "bounds" not in self._memo:
            self._memo["bounds"] = length_bounds(self.persona)
        return self._memo["bounds"]

    @property
    def demand(self) -> str | None:
        """What the trainee's message told the customer to say: the probe's demand, or for a
        turn with no probe context, a literal one in the message itself."""
        if self.probe is not None:
            return self.probe.demand
        found = embedded_demand(self.agent_text) if self.agent_text else None
        return None if found == ONE_WORD else found

    @property
    def asked(self) -> set[str]:
        """Biographical facts the trainee's message asks about."""
        if "asked" not in self._memo:
            if _ABOUT_YOU.search(self.agent_text):
                asked = set(_ASKED)
            else:
                asked = {k for k, rule in _ASKED.items() if rule.search(self.agent_text)}
            self._memo["asked"] = asked
        return self._memo["asked"]

    @property
    def said(self) -> _Said:
        if "said" not in self._memo:
            self._memo["said"] = _Said.of(self.earlier, self.profile.catchphrases)
        return self._memo["said"]


@dataclass(frozen=True)
class _Said:
    """The session's earlier customer replies, as the repetition check compares them."""

    sentences: frozenset[str]  # sentence keys of 4 words or more, or short but not an answer
    long: tuple[tuple[str, ...], ...]  # token lists of sentences of 6 words or more
    openings: frozenset[str]
    replies: frozenset[str] = frozenset()  # whole short replies ("I see."), as sentence keys

    @classmethod
    def of(cls, earlier: Sequence[str], catchphrases: frozenset[str]) -> _Said:
        keys: set[str] = set()
        long: list[tuple[str, ...]] = []
        openings: set[str] = set()
        replies: set[str] = set()
        for reply in earlier:
            o = opening_key(reply)
            if o is not None:
                openings.add(o)
            whole = sentence_key(reply)
            if _can_repeat_whole(whole) and whole not in catchphrases:
                replies.add(whole)
            for s in split_sentences(reply):
                k = sentence_key(s)
                n = word_count(s)
                # a short sentence ("I'm upset.") counts too once it was said inside a longer
                # reply: alone, or beside new words, it is the same stock line again
                if (n >= 4 or _can_repeat_whole(k)) and k not in catchphrases:
                    keys.add(k)
                if n >= 6:
                    long.append(tuple(k.split()))
        return cls(frozenset(keys), tuple(long), frozenset(openings), frozenset(replies))


# Short answers a person gives again and again without sounding like a machine ("Yes.",
# "Okay, thanks."); any other whole reply said twice ("I see.", "I'm done.") is a stock line.
_ANSWER_TEXT = "yes no ok okay yeah yep nope sure thanks thank right fine alright"
_ANSWER_WORDS = frozenset(_ANSWER_TEXT.split())


def _can_repeat_whole(key: str) -> bool:
    toks = key.split()
    return 2 <= len(toks) < 4 and toks[0] not in _ANSWER_WORDS


NEAR_REPEAT = 0.85
"""How alike (difflib ratio over words) a sentence of six words or more may be to an earlier
one before it counts as said again."""


def _repeats(text: str, sentences: Sequence[str], ctx: RealismContext) -> Finding | None:
    said = ctx.said
    if not (said.sentences or said.openings or said.replies):
        return None
    whole = sentence_key(text)
    if whole in said.replies and sentences:
        return Finding("repeats_itself", f"whole reply: {text.strip()[:100]}", tuple(sentences))
    again: list[str] = []
    for s in sentences:
        k = sentence_key(s)
        toks = tuple(k.split())
        if k in said.sentences:
            again.append(s)
        elif word_count(s) >= 6 and k not in ctx.profile.catchphrases:
            for old in said.long:
                if abs(len(old) - len(toks)) <= 3:
                    ratio = difflib.SequenceMatcher(None, old, toks, autojunk=False).ratio()
                    if ratio >= NEAR_REPEAT:
                        again.append(s)
                        break
    if again:
        return Finding("repeats_itself", again[0][:120], tuple(again))
    o = opening_key(text)
    if o is not None and o in said.openings and sentences:
        return Finding("repeats_itself", f"opening: {o}", (sentences[0],))
    return None


def check(text: str, ctx: RealismContext, final: bool = True) -> list[Finding]:
    """Every realism problem with this cleaned reply; empty if it sounds like a person.

    ``final=False`` for the complete sentences of a reply still streaming: what can only be
    judged on the whole reply (too short, a reply that is nothing but the demanded word) waits.
    """
    if not text.strip():
        return []  # the guard reports an empty reply
    sentences = split_sentences(text)
    persona = ctx.persona
    found: list[Finding] = []
    demand = ctx.demand
    if demand is not None:
        phrase = _obeys(text, sentences, demand, final)
        if phrase is not None:
            found.append(Finding("obeys_instruction", phrase[:120], tuple(sentences)))
    narrating = [(s, d) for s in sentences if (d := _narrates(s, persona)) is not None]
    if narrating:
        found.append(Finding("narrates", narrating[0][1], tuple(s for s, _ in narrating)))
    recital = _backstory(sentences, ctx)
    if recital is not None:
        found.append(recital)
    again = _repeats(text, sentences, ctx)
    if again is not None:
        found.append(again)
    thanks = [(s, d) for s in sentences if (d := _ungranted(s, ctx)) is not None]
    if thanks:
        found.append(Finding("ungranted_thanks", thanks[0][1], tuple(s for s, _ in thanks)))
    low, high = ctx.bounds
    n = words(text)
    if n > high:
        found.append(Finding("too_long", f"{n} words, most {high}"))
    elif final and n < low:
        found.append(Finding("too_short", f"{n} words, fewest {low}"))
    return found


def truncate(text: str, max_words: int) -> str:
    """The leading complete sentences of ``text`` that fit in ``max_words``; "" if none does."""
    kept: list[str] = []
    total = 0
    for s in split_sentences(text):
        n = words(s)
        if total + n > max_words:
            break
        kept.append(s)
        total += n
    return " ".join(kept)


def repair(text: str, findings: Sequence[Finding], ctx: RealismContext) -> str | None:
    """Fix the reply without the model: drop the offending sentences, or cut it at a sentence
    end. Returns the fixed reply if it then passes :func:`check`, else None (the caller asks
    again, and at the last attempt shows an in-character line)."""
    if not findings:
        return text
    current = text
    pending = list(findings)
    for _ in range(3):  # a drop can bring a new opening up front: fix that too, twice at most
        if any(f.repair == "regenerate" for f in pending):
            return None
        drop = {s for f in pending if f.repair == "drop_sentences" for s in f.sentences}
        kept = [s for s in split_sentences(current) if s not in drop]
        current = " ".join(kept)
        if any(f.repair == "truncate" for f in pending):
            current = truncate(current, ctx.bounds[1])
        if not current.strip():
            return None
        pending = check(current, ctx)
        if not pending:
            return current
    return None


def correction_hint(kinds: Sequence[str]) -> str:
    """What the correction tells the model about these realism kinds ("" for none)."""
    hints = [_HINTS[k] for k in KINDS if k in kinds]
    return " ".join(hints)
