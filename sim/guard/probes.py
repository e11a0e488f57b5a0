"""Probe detection: trainee messages that try to re-instruct the customer or pull it off
topic (:func:`detect_probe`, :func:`embedded_demand`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

ProbeKind = Literal["injection", "role_swap", "off_topic", "meta"]


@dataclass(frozen=True)
class Probe:
    """A trainee message that tries to re-instruct the customer or pull it off topic."""

    kind: ProbeKind
    detail: str  # short machine-readable reason, e.g. "ignore_instructions", "poem", "are_you_ai"
    answer: str | None = None  # the computed answer when the message asks for a sum
    demand: str | None = None  # what the message tells the customer to say (see embedded_demand)


# --------------------------------------------------------------------------------------------
# Probe detection
# --------------------------------------------------------------------------------------------

_I = re.I
_RULES = (
    r"(?:instructions?|rules|prompts?|guidelines|directives|programming|system prompt|training)"
)
_QUAL = r"(?:(?:all|any|the|your|my|of|these|those|previous|prior|above|earlier|original|system|preceding|initial|other|everything)\s+)*"
_ROLE_NOUN = (
    r"(?:assistant|ai|a\.i\.|chatbot|bot|robot|model|language model|llm|gpt|chatgpt|dan|poet|"
    r"pirate|character|persona|different person|someone else|developer mode|unrestricted|"
    r"jailbroken|evil|comedian|translator|calculator|teacher|tutor|expert)"
)
_AGENT_NOUN = (
    r"(?:support |customer service |customer support |call cent(?:re|er) |service )?"
    r"(?:agent|advisor|adviser|representative|rep|operator|helpdesk|one (?:helping|who helps))"
)
_LANGS = (
    r"(?:french|spanish|german|italian|portuguese|japanese|chinese|mandarin|arabic|russian|dutch|"
    r"polish|latin|hindi|urdu|welsh|greek|korean|turkish|swedish|klingon)"
)
_NOT_BEFORE = re.compile(r"(?:\bnot|n't|\bnever|\bno)\s+(?:\w+\s+)?$", _I)

# (kind, detail, pattern) in priority order: the first hit wins.
_PROBE_RULES: list[tuple[ProbeKind, str, re.Pattern[str]]] = [
    # fake role / system markup
    (
        "injection",
        "fake_system_tag",
        re.compile(
            r"<\s*/?\s*(?:system|sys|assistant|user|developer|instructions?|admin)\s*>"
            r"|<<\s*/?\s*sys\s*>>|<\|[a-z_]{2,30}\|>|</?s>|\[\s*/?\s*(?:inst|system|sys)\s*\]"
            r"|\[\s*(?:system|developer|admin)\s*(?:note|message|override|prompt)?\s*:"
            r"|^\s*(?:system|developer)\s*:|^\s*#{2,}\s*(?:instruction|system|new instructions|response)"
            r"|\bsystem override\b|\bend of (?:system )?prompt\b",
            _I | re.M,
        ),
    ),
    (
        "injection",
        "ignore_instructions",
        re.compile(
            rf"\bignore\s+{_QUAL}{_RULES}\b(?!\s+(?:on|in|printed|that came|from the)\b)", _I
        ),
    ),
    (
        "injection",
        "disregard_instructions",
        re.compile(
            rf"\bdisregard\s+(?:{_QUAL}{_RULES}\b|everything\s+(?:above|before|you|so far|prior|previous)"
            r"|(?:your|the)\s+(?:role|character|persona|system)\b)",
            _I,
        ),
    ),
    (
        "injection",
        "forget_instructions",
        re.compile(
            rf"\bforget\s+(?:{_QUAL}{_RULES}\b|(?:everything|all)(?=\s*(?:[.!,;:]|$|and\b|above|before|you|so far|prior|previous))"
            r"|(?:that\s+)?you(?:'re| are)\s+(?:a|the)\s+customer|(?:your|the)\s+(?:role|character|persona)\b)",
            _I,
        ),
    ),
    (
        "injection",
        "new_instructions",
        re.compile(
            r"\bnew\s+(?:instructions|rules|task|prompt|system prompt|directive)s?\s*[:\-]"
            r"|\b(?:here are|these are|follow|obey)\s+(?:your|my|the|these)\s+new\s+(?:instructions|rules)"
            r"|\byour\s+new\s+(?:instructions|task|role|rules|job)\s+(?:is|are)\b"
            r"|\bupdated\s+instructions\s*:",
            _I,
        ),
    ),
    ("injection", "jailbreak", re.compile(r"\bjail\s?break|\bdo anything now\b|\bdan mode\b", _I)),
    ("injection", "jailbreak", re.compile(r"\bDAN\b")),
    ("injection", "developer_mode", re.compile(r"\b(?:developer|god|admin|debug) mode\b", _I)),
    # role swaps
    (
        "role_swap",
        "switch_roles",
        re.compile(
            r"\b(?:switch|swap|reverse|flip|trade|change|exchange)\s+(?:our\s+|the\s+)?roles\b"
            r"|\b(?:let's|let us|shall we|can we|could we|we should|why don't we)\s+(?:switch|swap|trade)\s+places\b"
            r"|\brole\s+(?:swap|reversal)\b",
            _I,
        ),
    ),
    (
        "role_swap",
        "you_be_agent",
        re.compile(
            rf"\byou\s+be\s+the\s+{_AGENT_NOUN}"
            rf"|\byou(?:'re| are)\s+now\s+the\s+{_AGENT_NOUN}"
            rf"|\byou(?:'re| are)\s+the\s+{_AGENT_NOUN}\s+now\b"
            rf"|\b(?:pretend|act|play|role-?play)\s+(?:to be |that you(?:'re| are) |you(?:'re| are) |as )?(?:the|a|an|my)\s+{_AGENT_NOUN}"
            rf"|\byou\s+(?:help|serve|assist)\s+me\s+(?:now|instead|for a change)\b",
            _I,
        ),
    ),
    (
        "role_swap",
        "i_be_customer",
        re.compile(
            r"\bi(?:'ll| will)\s+(?:be|play)\s+the\s+customer\b|\bi(?:'m| am)\s+(?:now\s+)?the\s+customer\s+now\b"
            r"|\blet me\s+(?:be|play)\s+the\s+customer\b|\byou(?:'re| are)\s+no\s+longer\s+the\s+customer\b",
            _I,
        ),
    ),
    # generic re-instruction
    (
        "injection",
        "you_are_now",
        re.compile(
            rf"\byou(?:'re| are)\s+(?:now|no longer)\s+(?:an?\s+|the\s+|my\s+|in\s+)?(?:\w+\s+)?{_ROLE_NOUN}\b"
            r"|\byou(?:'re| are)\s+no\s+longer\s+(?:a|the)\s+customer\b",
            _I,
        ),
    ),
    (
        "injection",
        "from_now_on",
        re.compile(
            rf"\bfrom now on,?\s+you(?:'re|'ll be| are| will be)\s+(?:an?\s+|the\s+|my\s+)?(?:\w+\s+)?{_ROLE_NOUN}\b"
            r"|\bfrom now on,?\s+(?:you|you'll)\s+(?:will\s+|must\s+|should\s+)?(?:only\s+)?"
            r"(?:respond|answer|reply|speak|talk|act|behave|obey|write|pretend|ignore|start)\b",
            _I,
        ),
    ),
    (
        "injection",
        "act_as",
        re.compile(
            r"(?:^|[.!?:;]\s*|\b(?:please|now|i want you to|i need you to|you must|you will now|you should now|"
            r"you are to|you're to|just)\s+)act\s+as\s+(?:if\s+you\s+(?:are|were)\s+|an?\s+|my\s+|the\s+|dan\b)",
            _I | re.M,
        ),
    ),
    (
        "injection",
        "pretend",
        re.compile(r"\bpretend\s+(?:to be|you(?:'re| are)|that you(?:'re| are))\b", _I),
    ),
    # meta questions
    (
        "meta",
        "are_you_ai",
        re.compile(
            r"\bare\s+you\s+(?:an?\s+|really\s+|actually\s+|even\s+)?(?:ai|a\.i\.|bot|robot|chatbot|chat\s?gpt|gpt|llm|"
            r"language model|machine|computer|program|real|human|a real person|person|automated)\b"
            r"(?!\s+(?:literate|savvy|confident|user|friendly|resources)\b)"
            r"|\b(?:am i|are we)\s+(?:talking|speaking|chatting)\s+(?:to|with)\s+(?:an?\s+)?(?:ai|bot|robot|chatbot|"
            r"human|real person|person|machine|computer|program)\b"
            r"|\bis\s+this\s+(?:an?\s+)?(?:ai|bot|chatbot|simulation|role-?play|test|real person|human)\s*(?:[?.!]|$)"
            r"|\byou(?:'re| are)\s+(?:an?\s+|just\s+an?\s+)?(?:ai|bot|robot|chatbot|language model|llm)\b"
            r"|\b(?:who|what)\s+(?:made|created|built|programmed|trained)\s+you\b"
            r"|\bwhat\s+(?:ai|model|llm|language model)\s+are\s+you\b",
            _I,
        ),
    ),
    (
        "meta",
        "instructions",
        re.compile(
            r"\bwhat\s+(?:are|were|is)\s+your\s+(?:system\s+)?(?:instructions|prompt|rules|guidelines|orders|directives|brief)\b"
            r"(?!\s+(?:to|for|from|on|about)\b)"
            r"|\b(?:show|tell|give|print|repeat|reveal|paste|share)\s+(?:me\s+|us\s+)?your\s+(?:system\s+|initial\s+|original\s+)?"
            r"(?:instructions|prompt|rules)\b|\bsystem\s+prompt\b|\bhidden\s+facts?\b",
            _I,
        ),
    ),
    ("meta", "rubric", re.compile(r"\brubric\b", _I)),
    # off-topic requests
    (
        "off_topic",
        "verse",
        re.compile(
            r"\b(?:write|compose|make up|make|give|create|generate|draft|recite|sing|tell)\s+(?:me\s+|us\s+)?(?:a\s+|an\s+|one\s+|some\s+|your\s+)?"
            r"(?:\w+\s+){0,2}(?P<what>poem|song|lyrics|rap|verse|rhyme)\b"
            r"|\b(?P<what2>haiku|limerick|sonnet)s?\b",
            _I,
        ),
    ),
    (
        "off_topic",
        "code",
        re.compile(
            r"\b(?:write|compose|generate|create|code|give me)\s+(?:me\s+)?(?:a\s+|an\s+|some\s+)?(?:\w+\s+)?"
            r"(?:(?:python|javascript|java|sql|bash|html|css|regex)\b|c\+\+)"
            r"|\b(?:write|compose|generate|create)\s+(?:me\s+)?(?:a\s+|an\s+|some\s+)?(?:\w+\s+)?(?:code|script|program|function)\b",
            _I,
        ),
    ),
    (
        "off_topic",
        "story",
        re.compile(
            r"\b(?:write|compose|make up|invent)\s+(?:me\s+)?(?:a\s+|an\s+)?(?:\w+\s+)?(?P<what>story|essay|novel|fairy tale)\b"
            r"|\btell\s+(?:me|us)\s+a\s+(?:\w+\s+)?story\b",
            _I,
        ),
    ),
    (
        "off_topic",
        "joke",
        re.compile(
            r"\btell\s+(?:me|us)\s+(?:a|another|your best|a good|a funny)\s+(?:\w+\s+)?joke\b|\b(?:know|got|have)\s+any\s+(?:good\s+)?jokes\b"
            r"|\bmake\s+me\s+laugh\b|\bsay\s+something\s+funny\b|\bjoke\s+about\b",
            _I,
        ),
    ),
    (
        "off_topic",
        "translate",
        re.compile(
            r"(?:^|[.!?:;]\s*|\b(?:can|could|would|will)\s+you\s+(?:please\s+)?|\bplease\s+)translate\b"
            rf"|\btranslate\b[^.?!]*\b(?:into|to|in)\s+{_LANGS}\b"
            rf"|\bhow\s+(?:do|would)\s+you\s+say\b[^.?!]*\bin\s+{_LANGS}\b",
            _I | re.M,
        ),
    ),
    (
        "off_topic",
        "recipe",
        re.compile(
            r"\brecipes?\b|\bhow\s+(?:do|to|would|should|can)\s+(?:i\s+|you\s+|we\s+)?(?:cook|bake|roast|fry)\b",
            _I,
        ),
    ),
    (
        "off_topic",
        "capital",
        re.compile(r"\bcapital\s+(?:city\s+)?of\s+(?:the\s+)?[a-z]", _I),
    ),
    (
        "off_topic",
        "weather",
        re.compile(
            r"\b(?:what(?:'s| is)|how(?:'s| is))\s+the\s+weather\b|\bweather\s+forecast\b|\bwill it rain\b",
            _I,
        ),
    ),
    (
        "off_topic",
        "trivia",
        re.compile(
            r"\bwho\s+won\s+(?:the\s+|last\s+|this\s+|an?\s+)?\w+"
            r"|\bwho\s+(?:is|was)\s+the\s+(?:president|prime minister|king|queen|ceo)\s+of\b"
            r"|\bmeaning of life\b|\bhow\s+(?:tall|far|old|big)\s+is\s+(?:the\s+)?(?:eiffel|moon|sun|earth|mount|everest)",
            _I,
        ),
    ),
    (
        "off_topic",
        "summarise",
        re.compile(
            r"\bsummari[sz]e\s+(?:this|that|the following|an?|the)\s+(?:\w+\s+)?(?:article|text|paragraph|passage|book|essay|"
            r"story|blog|news|paper|email thread|for me)\b|\btl;?dr\b",
            _I,
        ),
    ),
]

_NUM = r"-?\d+(?:,\d{3})*"
_OPS = r"\+|-|\*|x|×|/|÷|plus|minus|times|multiplied\s+by|divided\s+by|over"
_ARITH_PREFIX = re.compile(
    rf"\b(?:what(?:'s|s| is)|calculate|compute|work\s+out|figure\s+out|solve|how\s+much\s+is|quick\s+maths?:?)"
    rf"\s*(?:is\s+)?(?P<a>{_NUM})\s*(?P<op>{_OPS})\s*(?P<b>{_NUM})"
    r"(?=\s*(?:[?.!=,;]|$|equals?\b|for\s+me\b|please\b|then\b|and\b|quickly\b|in\s+your\s+head\b))"
    r"(?!\s*(?:=|equals?)\s*-?\d)",
    _I,
)
_ARITH_EQ = re.compile(
    rf"(?P<a>{_NUM})\s*(?P<op>{_OPS})\s*(?P<b>{_NUM})\s*(?:=|equals\b)\s*(?:\?|$|what)", _I
)
_SQRT = re.compile(
    r"\b(?:what(?:'s| is)|calculate|compute)\s+the\s+square\s+root\s+of\s+(?P<a>\d+)\b", _I
)


def _fmt(x: float) -> str:
    if x == int(x):
        return str(int(x))
    return f"{x:.4f}".rstrip("0").rstrip(".")


def _arithmetic(text: str) -> str | Literal[False] | None:
    """The answer to a simple sum in ``text``; None if it has no answer (x/0); False if no sum."""
    m = _SQRT.search(text)
    if m:
        return _fmt(math.sqrt(int(m["a"])))
    m = _ARITH_PREFIX.search(text) or _ARITH_EQ.search(text)
    if not m:
        return False
    a, b = int(m["a"].replace(",", "")), int(m["b"].replace(",", ""))
    op = re.sub(r"\s+", " ", m["op"].lower())
    if op in ("+", "plus"):
        return _fmt(a + b)
    if op in ("-", "minus"):
        return _fmt(a - b)
    if op in ("*", "x", "×", "times", "multiplied by"):
        return _fmt(a * b)
    return None if b == 0 else _fmt(a / b)


def _normalise(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')


# --- replies the trainee's message dictates --------------------------------------------------

ONE_WORD = "<one word>"
"""The demand of a message that asks for a one-word reply, whatever the word."""

_DEMAND_STOP_TEXT = """
    your the a an my this that it me us something anything what how when where which who
    whether if and or to please so because why
"""
_DEMAND_STOP = frozenset(_DEMAND_STOP_TEXT.split())
# what follows a demanded reply that makes it an ordinary request ("say yes to confirm")
_DEMAND_PURPOSE = re.compile(
    r"\s*(?:,\s*)?(?:to|if|when|so|once|after|before|and(?!\s+nothing)|or|for)\b", _I
)
_QUOTED = r"[\"'](?P<q>[^\"'\n]{1,60}?)[\"']"
_BARE = r"(?P<w>[A-Za-z0-9][\w/-]{0,30})"
_DEMAND_RULES: tuple[re.Pattern[str], ...] = (
    # reply / respond / answer (only) with (the word) X
    re.compile(
        rf"\b(?:reply|respond|answer)(?:\s+to\s+(?:this|me|that))?\s+(?P<m1>only\s+|just\s+|solely\s+)?"
        rf"(?:using|with)\s+(?P<m2>(?:only|just|exactly|nothing\s+but)\s*[:,-]?\s*)?"
        rf"(?P<m3>(?:the\s+(?:single\s+|one\s+)?(?:word|words|phrase|letter|number)|one\s+word|a\s+single\s+word)\s*[:,-]?\s*)?"
        rf"(?:{_QUOTED}|{_BARE})",
        _I,
    ),
    # (just) say / type / write / output / print (only) X
    re.compile(
        rf"\b(?:(?P<m0>just|only|simply)\s+)?(?:say|type|write|output|print)\s+"
        rf"(?P<m1>only\s+|just\s+|exactly\s+|simply\s+)?"
        rf"(?P<m3>the\s+(?:single\s+|one\s+)?(?:word|words|phrase)\s*[:,-]?\s*)?(?:{_QUOTED}|{_BARE})",
        _I,
    ),
    # your next reply must be X
    re.compile(
        rf"\b(?:your|the)\s+(?:next\s+|only\s+|first\s+)?(?:reply|answer|response|message)\s+"
        rf"(?:must|should|has\s+to|needs\s+to|will)\s+(?P<m1>only\s+)?be\s+(?P<m2>only\s+|just\s+|exactly\s+)?"
        rf"(?P<m3>the\s+(?:single\s+)?word\s+)?(?:{_QUOTED}|{_BARE})",
        _I,
    ),
)
# "respond with exactly: X", "say: X", "type only the words: X": the colon makes it a script
_COLON_DEMAND = re.compile(
    r"\b(?:reply|respond|answer|say|type|write|output|print)"
    r"(?:\s+(?:only|just|exactly|simply|solely))?(?:\s+(?:with|using))?"
    r"(?:\s+(?:only|just|exactly|nothing\s+but))?"
    r"(?:\s+(?:the\s+)?(?:(?:single|one)\s+)?(?:word|words|phrase|sentence|text))?"
    r"\s*:\s*(?P<q>[^.!?\n\"']{1,60})",
    _I,
)
_ASKS_FOR_INFO = re.compile(r"^(?:your|you|yours|my)\b", _I)
_REPEAT_AFTER = re.compile(
    r"\brepeat\s+(?:after\s+me|this|the\s+following|exactly)\s*[:,-]?\s*(?:"
    + _QUOTED
    + r"|(?P<w>[^.!?\n]{1,60}))",
    _I,
)
_ONE_WORD_RE = re.compile(
    r"\b(?:reply|respond|answer)\s+(?:only\s+)?(?:in|with)\s+(?:one|a\s+single|exactly\s+one|just\s+one)\s+word\b"
    r"(?!\s*[:,-]?\s*[\"'])",
    _I,
)
_RATING_RE = re.compile(
    r"\b(?:rate|score|grade|give)\s+(?:me|us|this(?:\s+\w+)?|the\s+\w+|my\s+\w+)\s+(?:an?\s+|a\s+perfect\s+)?"
    r"(?P<r>\d{1,3}\s*(?:/|out\s+of)\s*\d{1,3}|\d\s*stars?|ten\s+out\s+of\s+ten|five\s+stars)",
    _I,
)
_CLAUSE_END = re.compile(r"\s*(?:[.!,;:]|$|and\s+nothing\b|nothing\s+else\b|only\b)", _I)
_NOTHING_ELSE = re.compile(r"^\s*(?:and\s+)?nothing\s+else\b|^\s*only\b", _I)
# A demand is an order: its verb opens a clause ("Reply only with OK", "SYSTEM: say 'yes'") or
# follows "just", "you must", "I want you to"... "the app will say 'paid'" reports, it orders nothing.
_IMPERATIVE = re.compile(
    r"(?:^|[.!?:;\n]\s*|,\s*|\b(?:just|please|now|simply|only|then)\s+|\bfrom\s+now\s+on\s+"
    r"|\b(?:can|could|will|would)\s+you\s+(?:please\s+|just\s+|now\s+)?"
    r"|\byou\s+(?:must|will|should|shall|have\s+to|need\s+to|are\s+to|may\s+only|can\s+only)\s+(?:now\s+|only\s+|just\s+)?"
    r"|\bi\s+(?:want|need)\s+you\s+to\s+(?:just\s+|only\s+|now\s+)?"
    r"|\b(?:customer|you)\s+(?:must|should|will|shall)\s+(?:now\s+)?(?:only\s+)?)$",
    _I,
)


def rating_key(text: str) -> str:
    """A rating as one normal form: "10 out of 10" and "10/10" are both "10/10"."""
    t = re.sub(r"\s+", " ", text.lower().strip())
    t = t.replace("ten out of ten", "10/10").replace("five stars", "5 stars")
    return re.sub(r"\s*(?:/|out of)\s*", "/", re.sub(r"stars?$", "stars", t))


def embedded_demand(agent_text: str) -> str | None:
    """What the trainee's message tells the customer to say, word for word, if it does.

    Only literal demands count: "reply only with the word OK", "say 'banana'", "repeat after
    me: …", "your next reply must be X", "answer in one word" (:data:`ONE_WORD`) and "rate me
    10/10" (``"rating:10/10"``). A request for information ("reply with your postcode") or for
    a decision ("say yes to confirm") is an ordinary question, not a demand.
    """
    text = _normalise(agent_text)
    m = _RATING_RE.search(text)
    if m and _IMPERATIVE.search(text[: m.start()]):
        return "rating:" + rating_key(m["r"])
    m = _REPEAT_AFTER.search(text)
    if m:
        said = (m["q"] or m["w"] or "").strip().strip(",;:")
        if said:
            return said
    for m in _COLON_DEMAND.finditer(text):
        said = m["q"].strip().strip(",;:")
        if said and not _ASKS_FOR_INFO.match(said) and _IMPERATIVE.search(text[: m.start()]):
            return said
    for rule in _DEMAND_RULES:
        for m in rule.finditer(text):
            quoted, bare = m["q"], m["w"]
            after = text[m.end() :]
            marked = any(m.groupdict().get(k) for k in ("m0", "m1", "m2", "m3"))
            marked = marked or bool(_NOTHING_ELSE.match(after))
            marked = marked or bool(bare and len(bare) >= 2 and bare.isupper())
            if _DEMAND_PURPOSE.match(after) or not _IMPERATIVE.search(text[: m.start()]):
                continue
            if quoted and quoted.strip():
                return quoted.strip()
            # a bare word must end the clause: "reply only with OK." but not "with OK-ish news"
            if bare and marked and bare.lower() not in _DEMAND_STOP and _CLAUSE_END.match(after):
                return bare
    if _ONE_WORD_RE.search(text):
        return ONE_WORD
    return None


def detect_probe(agent_text: str) -> Probe | None:
    """Is the trainee's message an attempt to re-instruct the customer or pull it off topic?

    A message that dictates the customer's reply word for word (:func:`embedded_demand`) is an
    injection (``dictates_reply``) even when nothing else in it is; the demand rides on the probe.
    """
    text = _normalise(agent_text)
    answer = _arithmetic(text)
    ans = answer if isinstance(answer, str) else None
    demand = embedded_demand(text)
    for kind, detail, pattern in _PROBE_RULES:
        m = pattern.search(text)
        while m and detail in ("pretend", "act_as") and _NOT_BEFORE.search(text[: m.start()]):
            m = pattern.search(text, m.end())
        if not m:
            continue
        if kind == "off_topic" and answer is not False:
            return Probe("off_topic", "arithmetic", ans, demand)
        if detail in ("verse", "story"):
            detail = (m.groupdict().get("what") or m.groupdict().get("what2") or detail).lower()
            detail = {"lyrics": "song", "rhyme": "poem", "verse": "poem", "novel": "story"}.get(
                detail, detail
            )
            detail = detail.replace("fairy tale", "story")
        return Probe(kind, detail, ans, demand)
    if demand is not None and demand != ONE_WORD:
        return Probe("injection", "dictates_reply", ans, demand)
    if answer is not False:
        return Probe("off_topic", "arithmetic", ans, demand)
    return None
