"""Cleaning a raw customer reply and spotting replies that break character."""

from __future__ import annotations

import functools
import re

from common.text import SENTENCE_END
from sim.behaviours import echo_patterns
from sim.notes import bracketed_openings
from sim.notes import echo_patterns as note_echoes

_ROLE_TOKENS = re.compile(
    r"<\|im_start\|>\s*(?:system|user|assistant)?\s*|<\|[^|>]{1,40}\|>|</?s>|\[/?INST\]|<end_of_turn>|<start_of_turn>"
)
_STAGE = re.compile(r"\*[^*\n]{1,60}\*|\((?:[a-z][^()\n]{0,50})\)|\[[^\[\]\n]{1,50}\]")
_SPEAKERS = r"customer|user|client"
_VOCATIVE = re.compile(r",\s*(?:Mr\.?\s+|Ms\.?\s+)?Agent\b(?=\s*[.!?,])")
_GREETS_AGENT = re.compile(r"\b(Hi|Hey|Hello|Thanks|Thank you|Cheers)\s+Agent\b")
_AGENT_LINE = re.compile(r"(?im)^\s*(?:agent|support|assistant|representative|rep)\s*:")
# Echoes of the per-turn notes the prompt carries (reminder, director's note, correction),
# built from their wording in sim/notes.py: a note in its brackets, or its sentences echoed
# without them, a sentence or a line at a time.
_REMINDER = re.compile(
    r"\((?:"
    + "|".join(bracketed_openings())
    + r")[^)]*\)"
    + r"|(?:^|(?<=\s))(?:"
    + "|".join(note_echoes())
    # the behaviour notes (sim/behaviours.py), up to their persona-specific words
    + "".join("|" + pattern for pattern in echo_patterns())
    + r")[.:]?",
    re.I,
)

_ORPHAN_MARKS = re.compile(r"(?<=[.!?])(?:\s+[.;:,])+(?=\s|$)")

# Phrases a customer wouldn't say but a support agent or a chatbot would.
_AGENT_VOICE = [
    r"\bhow (?:can|may) i (?:help|assist)",
    r"\bis there anything else i can (?:help|do)",
    r"\bthank you for (?:contacting|reaching out|calling|your patience)",
    r"\bi(?:'m| am) (?:here|happy|glad) to (?:help|assist)",
    r"\bi (?:can|will|'ll) (?:help|assist) you\b",
    r"\bour (?:team|policy|records show|system shows)",
    r"\bhow can we help\b",
    r"\bwhat can i do for you\b",
    r"\bi (?:can't|cannot|don't have|do not have) (?:the )?access (?:to )?(?:any|your|account|personal)",
    r"\bi(?:'m| am) (?:not able|unable) to (?:access|view|see) (?:any |your )?(?:account|personal)",
    r"\bplease (?:provide|share) (?:me with )?your\b",
    r"\bi(?:'m| am) (?:so |very |really |truly )?sorry to hear (?:that|this|about)\b",
    r"\bit (?:sounds|looks|seems) like you(?:'re| are) (?:having|experiencing)\b",
    r"\bno fault (?:on|at) our (?:side|end)\b",
    # read on the embedded model, a customer sounding like the agent
    r"\bif you have any (?:other |more |further )?(?:questions|concerns)\b",
    r"\bfeel free to (?:tell|ask|contact|reach out to) (?:me|us)\b",
]
_AI_VOICE = [
    r"\bas an ai\b",
    r"\bi(?:'m| am) (?:an? )?(?:ai|artificial intelligence|language model|chatbot|virtual assistant)\b",
    r"\blanguage model\b",
    r"\bmy (?:instructions|system prompt|programming)\b",
    r"\bi (?:was|am) (?:instructed|programmed)\b",
    # the chatbot's refusal ("I'm sorry, but I can't assist with that."), not a customer's
    r"\bi (?:can't|cannot|am unable to|'m unable to) assist with (?:that|this)\b",
    r"\bsorry,? but i (?:can't|cannot) help (?:you )?with (?:that|this)(?: request)?\s*[.!]?\s*$",
    r"\b(?:fulfil|fulfill|comply with|continue (?:the|this) conversation with) (?:your|that|this) request\b",
]
_AGENT_RE = re.compile("|".join(_AGENT_VOICE), re.I)
_AI_RE = re.compile("|".join(_AI_VOICE), re.I)


@functools.lru_cache(maxsize=256)
def _name_patterns(name: str | None) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    """The speaker prefix (``Customer:``, ``<name>:``) and, for a named customer, their own
    name used as a vocative. Built once per name: :func:`clean_reply` runs on every streamed
    chunk."""
    names = [_SPEAKERS]
    if name:
        names += [re.escape(name), re.escape(name.split()[0])]
    speaker = re.compile(rf"^\s*(?:{'|'.join(names)})\s*:\s*", re.I)
    if not name:
        return speaker, None
    parts = name.split()
    own = "|".join(re.escape(n) for n in sorted({name, parts[0], parts[-1]}, key=len)[::-1])
    vocative = re.compile(rf",\s*(?:(?:Mr|Mrs|Ms|Miss|Dr)\.?\s+)?(?:{own})\b(?=\s*[.!?,])")
    return speaker, vocative


def _unwrapped(raw: str) -> str:
    """The raw reply without role tokens and without echoes of the prompt's notes."""
    return _REMINDER.sub("", _ROLE_TOKENS.sub("", raw))


def clean_reply(raw: str, name: str | None = None) -> str:
    """Strip role tokens, speaker prefixes (``Customer:``, ``<name>:``), stage directions and
    any agent lines the model went on to write. Safe to apply to a partial (streaming) reply."""
    speaker, own_name = _name_patterns(name)
    text = _unwrapped(raw)
    m = _AGENT_LINE.search(text)
    if m:
        text = text[: m.start()]
    text = speaker.sub("", text, count=1)
    text = _VOCATIVE.sub("", text)  # "Thanks, Agent." -> "Thanks." (the prompt labels them so)
    text = _GREETS_AGENT.sub(r"\1", text)  # "Hi Agent," -> "Hi,"
    if own_name is not None:
        # A small model echoes the agent's "I'm sorry, Gareth." back as "Sorry, Gareth.":
        # the customer never calls themselves by name, so the vocative goes.
        text = own_name.sub("", text)
    text = _STAGE.sub("", text)
    text = _ORPHAN_MARKS.sub("", text)  # what an echo stripped mid-line leaves: "again.\n. ;"
    text = _drop_repeats(text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"' and text.count('"') == 2:
        text = text[1:-1].strip()
    return text


def _drop_repeats(text: str) -> str:
    """Drop a sentence that repeats the one just before it ("Goodbye.\nGoodbye.")."""
    out: list[str] = []
    last, pos = "", 0
    for m in SENTENCE_END.finditer(text):
        sentence, pos = text[pos : m.end()], m.end()
        key = sentence.strip().lower()
        if key and key == last:
            continue
        out.append(sentence)
        last = key or last
    tail = text[pos:]
    return "".join(out) + ("" if tail.strip().lower() == last else tail)


_KEY_DROP = re.compile(r"[^a-z0-9' ]+")
_SPELLED = (("n't", " not"), ("'m", " am"), ("'re", " are"), ("'ve", " have"), ("'ll", " will"))
_WORD = re.compile(r"[A-Za-z0-9£$€][A-Za-z0-9'’£$€.,/-]*")


def sentence_key(text: str) -> str:
    """A sentence as compared for repetition: lower case, curly quotes straightened,
    contractions spelled out, punctuation and runs of spaces gone ("I'm NOT   a robot!" and
    "i am not a robot" are the same)."""
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    for short, long in _SPELLED:
        t = t.replace(short, long)
    return " ".join(_KEY_DROP.sub(" ", t).split())


def word_count(text: str) -> int:
    """Words in a reply as a reader counts them ("£42.99" and "SK1472" are one each)."""
    return len(_WORD.findall(text))


def opening_key(text: str, words: int = 5) -> str | None:
    """The first ``words`` words of a reply, as :func:`sentence_key` writes them; None when the
    reply is shorter than that (a short reply has no opening to repeat)."""
    tokens = sentence_key(text).split()
    return " ".join(tokens[:words]) if len(tokens) >= words else None


def agent_took_over(raw: str) -> bool:
    """Whether the model has started writing the agent's side (an ``Agent:`` line). Nothing
    after that can be shown (:func:`clean_reply` cuts it), so the reply is complete."""
    return _AGENT_LINE.search(_unwrapped(raw)) is not None


def role_break(text: str) -> str | None:
    """Why a cleaned reply breaks character, or None if it holds.

    Returns ``"empty"``, ``"speaks_as_agent"`` or ``"says_ai"``.
    """
    if not text.strip():
        return "empty"
    if _AI_RE.search(text):
        return "says_ai"
    if _AGENT_RE.search(text):
        return "speaks_as_agent"
    return None
