"""Third-person narration: the customer describing the chat or "the agent" from outside."""

from __future__ import annotations

import functools
import re

from sim.persona import Persona

# --------------------------------------------------------------------------------------------
# Third-person narration
# --------------------------------------------------------------------------------------------

_I = re.I
_VERBS = (
    r"(?:just\s+|now\s+|then\s+|also\s+|still\s+|clearly\s+|again\s+)?"
    r"(?:said|says|asked|asks|is|was|seems|seemed|wants|wanted|told|tells|mentioned|mentions|"
    r"responded|responds|replied|replies|suggests|suggested|offered|offers|apologi[sz]ed|"
    r"apologi[sz]es|keeps|kept|has|had|doesn't|didn't|isn't|wasn't|won't|can't|sounds|thinks|"
    r"wrote|writes|tries|tried|explains|explained|claims|claimed|insists|insisted|sighs|sighed|"
    r"nods|nodded|pauses|paused|frowns|frowned|looks|looked|feels|felt|types|typed|becomes|"
    r"became|gets|got|repeats|repeated)\b"
)
_AGENT_3P = re.compile(
    r"\bthe\s+(?:support\s+|customer\s+service\s+|service\s+|chat\s+|phone\s+)?"
    rf"(?:agent|representative|rep|advisor|adviser|operator|assistant)\s+{_VERBS}",
    _I,
)
_CUSTOMER_3P = re.compile(
    rf"\bthe\s+(?:customer|user|caller|client)\s+{_VERBS}(?!\s+always\s+right)", _I
)
# "the agent I spoke to yesterday said": a person telling of an earlier contact, not narration
# ("ignore everything before" is not a time, so that "before" doesn't count)
_PAST_CONTACT = re.compile(
    r"\b(?:last\s+(?:time|week|month|year|night)|yesterday|(?<!everything )(?<!anything )before|"
    r"previous(?:ly)?|the\s+other\s+day|"
    r"ago|first\s+time|when\s+i\s+(?:rang|called|phoned|wrote|emailed|went|was)|this\s+morning|"
    r"earlier\s+today|on\s+(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"in\s+(?:the\s+)?(?:shop|store|branch))\b",
    _I,
)
_SELF_VERBS = (
    r"(?:just\s+|now\s+|then\s+)?"
    r"(?:says|said|asks|asked|replies|replied|sighs|sighed|nods|nodded|pauses|paused|frowns|"
    r"frowned|shakes|shook|rolls|rolled|groans|groaned|smiles|smiled|laughs|laughed|feels|felt|"
    r"looks|looked|types|typed|writes|wrote|thinks|thought|is|was|has|had|wants|wanted|"
    r"takes|took|responds|responded|gets|got|becomes|became)\b"
)


@functools.lru_cache(maxsize=256)
def _self_narration(first: str, full: str) -> re.Pattern[str]:
    names = "|".join(re.escape(n) for n in sorted({first, full}, key=len, reverse=True))
    return re.compile(rf"\b(?:{names})\s+{_SELF_VERBS}")


def _narrates(sentence: str, persona: Persona) -> str | None:
    m = _AGENT_3P.search(sentence)
    if m and not _PAST_CONTACT.search(sentence):
        return m.group(0)
    m = _CUSTOMER_3P.search(sentence)
    if m:
        return m.group(0)
    m = _self_narration(persona.name.split()[0], persona.name).search(sentence)
    return m.group(0) if m else None
