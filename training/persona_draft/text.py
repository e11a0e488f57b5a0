"""Small text helpers for drafting: sentences, clipping, third person, unmasking."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from training.masking import (
    PLACEHOLDER_RE,
    has_placeholder,
    wordset,
)

if TYPE_CHECKING:
    pass


# --- small text helpers -------------------------------------------------------------------------
_STOP = wordset(
    """
    a an the and or but so to of in on at for with by from as is are was were be been being
    it its this that these those i me my we our you your he she they them their there here
    what when where who why how which can could would will shall should may might must do
    does did done have has had not no yes please just also any some all about into out up
    down over than then too very really get got go going let tell know sure okay ok thanks
    thank hi hello sorry see check help need want like one more again still now today
    exactly around doing take give make happen happened started anything else right
    """
)
_PRODUCTS = (
    "broadband",
    "internet",
    "wifi",
    "router",
    "phone",
    "mobile",
    "contract",
    "bill",
    "account",
    "card",
    "transfer",
    "payment",
    "order",
    "parcel",
    "delivery",
    "package",
    "subscription",
    "membership",
    "flight",
    "booking",
    "ticket",
    "insurance",
    "policy",
    "claim",
    "loan",
    "mortgage",
    "meter",
    "boiler",
    "heater",
    "app",
    "laptop",
    "tv",
    "dress",
    "photos",
    "prescription",
    "refund",
    "energy",
    "tariff",
    "sim",
    "plan",
)
_RESOLUTION = (
    "refund",
    "replacement",
    "replace",
    "resend",
    "credit",
    "compensation",
    "engineer",
    "call back",
    "callback",
    "investigation",
    "investigate",
    "trace",
    "reference",
    "cancel",
    "discount",
    "voucher",
    "escalate",
    "manager",
    "update",
    "confirmation",
    "repair",
    "reconnect",
    "reset",
    "waive",
    "rebook",
    "priority",
    "deliver",
    "today",
    "tomorrow",
)
_PLACEHOLDER_WORDS = {
    "[EMAIL]": "my email address",
    "[PHONE]": "my phone number",
    "[POSTCODE]": "my postcode",
    "[CARD]": "my card",
    "[ACCOUNT]": "my account",
}
DRAFT_NAMES = (
    "Jordan Ellis",
    "Sam Patel",
    "Alex Morgan",
    "Robin Clarke",
    "Chris Adeyemi",
    "Jamie Walsh",
    "Taylor Reid",
    "Casey Brennan",
    "Morgan Hughes",
    "Riley Chen",
)
_TECHNIQUE_WORDS = {
    "listen": "asks them to explain what happened",
    "validate": "names how they feel and says it makes sense",
    "cooperate": "works out a concrete next step with them",
    "affirm": "sums up their problem to check it was understood",
}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _content_words(text: str) -> list[str]:
    low = PLACEHOLDER_RE.sub(" ", text.lower().replace("’", "'"))
    words = re.findall(r"[a-z][a-z'-]{2,}", low)
    return [w for w in dict.fromkeys(words) if w not in _STOP and "'" not in w]


def _clip(text: str, words: int) -> str:
    ws = text.split()
    return text if len(ws) <= words else " ".join(ws[:words]).rstrip(",;:") + "…"


def _quote(text: str, words: int = 18) -> str:
    """An agent's words for a rule: the first sentence (without masked data), clipped."""
    ok = [s for s in sentences(text) if not has_placeholder(s)]
    return _clip(ok[0] if ok else PLACEHOLDER_RE.sub("…", text), words)


_THIRD = {
    "i": "they",
    "i'm": "they're",
    "im": "they're",
    "i've": "they've",
    "i'd": "they'd",
    "i'll": "they'll",
    "me": "them",
    "my": "their",
    "mine": "theirs",
    "myself": "themselves",
    "am": "are",
    "we": "they",
    "our": "their",
    "us": "them",
}


def third_person(text: str) -> str:
    """A customer's sentence about themselves, as said about them ("my" -> "their")."""
    out: list[str] = []
    for w in text.split():
        bare = w.strip(",.;:!?\"'()")
        core = bare.lower().replace("’", "'")
        swap = _THIRD.get(core)
        if core in ("was", "wasn't") and out and out[-1].lower() == "they":
            swap = "were" if core == "was" else "weren't"
        out.append(w.replace(bare, swap) if swap and bare else w)
    text = " ".join(out)
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def unmask_words(text: str, first_name: str) -> str:
    """Masked data taken out of what a customer says: a clause giving a phone number,
    email, postcode, card or account is left out ("my number is [PHONE]"), or, if that
    would leave nothing, says "my phone number" and the like; "I'm [NAME]" takes the
    draft's own name and other names are dropped."""
    text = re.sub(
        r"\b(my name is|my name's|i'm|i am|this is|it's)\s+\[NAME\]",
        lambda m: f"{m.group(1)} {first_name}",
        text,
        flags=re.I,
    )
    text = re.sub(r"(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s+\[NAME\]", "you", text)
    text = re.sub(r"\s*\[NAME\]", "", text)
    # "my card [CARD] was charged": the words already say what it was
    text = re.sub(
        r"\b(card|account|number|postcode|email|address|phone|mobile)\s+"
        r"\[(?:CARD|ACCOUNT|PHONE|POSTCODE|EMAIL)\](?=\s+[a-z])",
        r"\1",
        text,
        flags=re.I,
    )
    pieces = re.split(r"(?<=[,.;!?])\s+", text)
    if any(not has_placeholder(x) for x in pieces):
        kept: list[str] = []
        for x in pieces:
            if not has_placeholder(x):
                kept.append(x)
            elif kept and kept[-1].endswith(",") and x[-1:] in ".!?":
                kept[-1] = kept[-1][:-1] + x[-1]  # "I'm Jo, my number is [PHONE]." -> "I'm Jo."
        text = " ".join(kept)
    for ph, words in _PLACEHOLDER_WORDS.items():
        text = text.replace(ph, words)
    return re.sub(r"\s{2,}", " ", re.sub(r"\s+([,.!?])", r"\1", text)).strip()


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s[:40].strip("_") or "fact"
