"""Realism checks: does a customer reply sound like a person, beside being in character?

The character guard (``sim/guard/``) stops replies that break the role. These checks stop
replies a person in the role would not give: narrating the chat in the third person, reciting
the persona's backstory, repeating a sentence or an opening from earlier in the session, doing
what an instruction embedded in the trainee's message says, thanking or sounding satisfied
when the director has granted nothing, and replies longer or shorter than the persona's style.

:func:`check` lists every :class:`Finding` for a cleaned reply; :func:`repair` fixes what can
be fixed without the model (drops sentences, or cuts at a sentence end). Each kind has one
repair path (:data:`REPAIR_PATHS`):

- ``drop_sentences``: narration, backstory, repetition, ungranted thanks;
- ``truncate``: a reply over the persona's length;
- ``regenerate``: a reply under it (asked again with a correction; at the last attempt the
  short reply is kept: a terse reply beats a stock line), and a reply that obeys an embedded
  instruction (asked again, told not to; if the last attempt obeys too, an in-character line
  from :func:`sim.guard.in_character_line` is shown instead).

Like the guard, everything here is regex and token logic: no model calls.

Modules: ``kinds`` (what a finding is and how each kind is repaired), ``length``,
``narration``, ``backstory``, ``thanks``, ``instructions`` (one check each), and ``checks``
(the turn's context, the repetition check, :func:`check` and :func:`repair`).
"""

from sim.realism.backstory import BIO_RUN, OVERLAP_TOKENS
from sim.realism.checks import NEAR_REPEAT, RealismContext, check, correction_hint, repair, truncate
from sim.realism.instructions import without_demand
from sim.realism.kinds import KINDS, REPAIR_PATHS, SOFT, Finding, Granted, RealismKind, RepairPath
from sim.realism.length import length_bounds, words

__all__ = [
    "BIO_RUN",
    "KINDS",
    "NEAR_REPEAT",
    "OVERLAP_TOKENS",
    "REPAIR_PATHS",
    "SOFT",
    "Finding",
    "Granted",
    "RealismContext",
    "RealismKind",
    "RepairPath",
    "check",
    "correction_hint",
    "length_bounds",
    "repair",
    "truncate",
    "without_demand",
    "words",
]
