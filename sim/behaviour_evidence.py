"""Did a customer reply show the behaviour the director switched on? The probe check's reading.

Each reading is deterministic (words, counts and the guard's leak check), so a persona's
behaviours can be verified on any model, and a failure names what was missing.
"""

from __future__ import annotations

import re

from sim.behaviours import Cue, detail_fact, mentions, note
from sim.guard import check_reply, split_sentences
from sim.persona import Interrupts, Persona, Tangential, Vague
from sim.postprocess import word_count

SHORT_WORDS = 15
"""The most words of the sentence that shows impatience (beside it, the reply may carry
another behaviour's sentence)."""
_TIME = re.compile(
    r"\b(?:when|how\s+long|how\s+much\s+longer|how\s+soon|today|tonight|tomorrow|right\s+now|"
    r"now|asap|hurry|quick(?:ly)?|soon|minutes?|hours?|days?|waiting|wait|deadline|time|yet|"
    r"still|long)\b",
    re.I,
)


def shows(persona: Persona, cue: Cue, reply: str, directive: str = "") -> bool:
    """Whether ``reply`` (or, for non_native, the note the actor got) shows the cue.

    - impatient: a sentence of at most :data:`SHORT_WORDS` words pushing about time (when,
      how long, today, waiting);
    - tangential, interrupts: two content words of the grievance or the second problem;
    - repeats: three content words of the persona's problem or opening line;
    - vague: the first answer does not give the detail away (the guard's leak check), the
      second does;
    - non_native: the turn's note carried the instruction.
    """
    b = persona.behaviour(cue.kind)
    if cue.kind == "impatient":
        return any(word_count(s) <= SHORT_WORDS and _TIME.search(s) for s in split_sentences(reply))
    if isinstance(b, Tangential):
        return mentions(reply, b.grievance)
    if isinstance(b, Interrupts):
        return mentions(reply, b.second_problem)
    if cue.kind == "repeats":
        return mentions(reply, persona.scenario.problem + " " + persona.opening_line, need=3)
    if isinstance(b, Vague):
        leaks = any(v.kind == "leaks_fact" for v in check_reply(reply, persona, [detail_fact(b)]))
        return leaks if cue.gives_detail else not leaks
    if cue.kind == "non_native":
        return note(persona, cue) in directive
    return False


def what_shows(cue: Cue) -> str:
    """What :func:`shows` looks for, for a failed check's detail line."""
    return {
        "impatient": f"a short sentence (at most {SHORT_WORDS} words) asking when or how long",
        "tangential": "the older grievance (two of its words)",
        "interrupts": "the second problem (two of its words)",
        "repeats": "the problem said again (three words of the problem or opening line)",
        "vague": "the detail given" if cue.gives_detail else "the detail left out",
        "non_native": "the non-native note in the actor's instructions",
    }[cue.kind]


__all__ = ["SHORT_WORDS", "shows", "what_shows"]
