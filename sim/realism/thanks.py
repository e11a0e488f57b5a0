"""Ungranted thanks and satisfaction: pleased before the director says anything was offered."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sim.persona import Persona
from sim.realism.narration import _I

if TYPE_CHECKING:
    from sim.realism.checks import RealismContext


# --------------------------------------------------------------------------------------------
# Ungranted thanks and satisfaction
# --------------------------------------------------------------------------------------------

_GREAT = r"(?:great|perfect|brilliant|wonderful|fantastic|excellent|amazing|ideal|lovely|spot\s+on)"
_SATISFIED = re.compile(
    r"\b(?:that(?:'s|\s+is)|this\s+is|it(?:'s|\s+is)|that\s+sounds|sounds)\s+"
    rf"(?:really\s+|so\s+|very\s+|absolutely\s+)?(?:{_GREAT}|exactly\s+what\s+i\s+(?:wanted|needed|was\s+after))\b"
    r"|\bsounds\s+(?:really\s+|very\s+)?good\b"
    rf"|\b{_GREAT},?\s+(?:thank\s+you|thanks|cheers)\b"
    r"|\bi(?:'m|\s+am)\s+(?:really\s+|very\s+|so\s+|quite\s+)?(?:happy|satisfied|pleased|delighted|content)\s+with\s+(?:that|this|the\s+\w+|what)\b"
    r"|\b(?:problem|issue|that(?:'s|\s+is)|it(?:'s|\s+is))\s+(?:all\s+)?(?:solved|sorted|resolved|fixed)\b"
    r"|\bthat\s+works\s+(?:for\s+me|perfectly|fine)\b"
    r"|\byou(?:'ve|\s+have)\s+been\s+(?:really\s+|very\s+|so\s+|incredibly\s+)?(?:great|helpful|brilliant|wonderful|a\s+star|lovely|amazing|fantastic|a\s+great\s+help)\b"
    r"|\bthat(?:'s|\s+is)\s+(?:all|everything)\s+i\s+(?:need(?:ed)?|wanted)\b",
    _I,
)
_THANKS = re.compile(
    r"\b(?:thank\s+you|thanks|thank\s+u|cheers|ta|much\s+appreciated|many\s+thanks)\b"
    r"|\bi\s+(?:really\s+|do\s+)?appreciate\s+(?:that|it|this|you|your)\b"
    r"|\b(?:what|that(?:'s|\s+is))\s+a\s+(?:huge\s+|real\s+)?relief\b",
    _I,
)
_NEGATED = re.compile(r"\b(?:not|never|no|nothing|hardly|nor)\b|n't\b|\?", _I)
_HEDGED = re.compile(
    r"\b(?:but|though|however|anyway|yet)\b|\bno\s+thanks\b|\bthanks\s+for\s+nothing\b|\?", _I
)
_SARCASM = re.compile(
    rf"\bjust\s+{_GREAT}\b|^\W*(?:oh|well|yeah),?\s+(?:that's\s+)?{_GREAT}\W*$|\byeah,?\s+right\b",
    _I,
)


def _sign_off(sentence: str, persona: Persona) -> bool:
    first = re.escape(persona.name.split()[0])
    thanks = r"(?:many\s+)?thanks(?:\s+again|\s+so\s+much)?|thank\s+you(?:\s+again)?"
    regards = r"kind\s+regards|best\s+wishes|regards|best"
    return bool(
        re.fullmatch(
            rf"\W*(?:(?:{thanks}),?\s+{first}|(?:{regards})(?:,?\s+{first})?)\W*", sentence, _I
        )
    )


def _ungranted(sentence: str, ctx: RealismContext) -> str | None:
    g = ctx.granted
    if g is None or g.resolved:
        return None
    m = _SATISFIED.search(sentence)
    if m and not g.offered and not _NEGATED.search(sentence) and not _SARCASM.search(sentence):
        return m.group(0)
    m = _THANKS.search(sentence)
    if (
        m
        and not (g.offered or g.soothed)
        and not ctx.profile.habitual_thanks
        and not _HEDGED.search(sentence)
        and not _sign_off(sentence, ctx.persona)
    ):
        return m.group(0)
    return None
