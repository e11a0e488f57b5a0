"""Personal data out of imported conversations, before anything is stored or shown.

What is masked, and how each kind is found:

- **phone numbers**: Google's libphonenumber (the ``phonenumbers`` port) finds numbers that
  are valid in the UK or the US, or in international form; a number after a phone cue
  ("call me on", "my mobile is") only has to be possible, so fictional ranges count too;
- **card numbers**: 13-19 digits (spaces or dashes between) that pass the Luhn check
  (``stdnum.luhn``), or any such run after a card cue. The last four digits alone are kept:
  agents quote them ("the card ending 4821") and they identify no one;
- **account numbers**: IBANs that validate (``stdnum.iban``), UK sort codes after a cue or
  next to an account number, and the number after "account/membership/customer/policy
  number";
- **emails**, **postcodes** (UK, Canadian; US ZIP codes only after a state or a "zip"
  cue) by pattern;
- **names**: there is no named-entity model here (none ships its weights in a package we can
  install), so names are found by cue: speaker labels, introductions ("my name is", "this
  is Sam from"), titles ("Mrs Okafor"), greetings and thanks ("Thanks, Dave") and sign-offs.
  Every name found anywhere in a conversation is then masked everywhere in it.

Kept on purpose (the trainee needs them): order, booking, tracking, invoice and case
references, dates, times and prices. A number right after one of those cues is never
masked as a phone or account number.

Masked text says what was there: ``[NAME]``, ``[EMAIL]``, ``[PHONE]``, ``[POSTCODE]``,
``[CARD]``, ``[ACCOUNT]``. The originals are never kept.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import iban, luhn

Kind = Literal["name", "email", "phone", "postcode", "card", "account"]
KINDS: tuple[Kind, ...] = ("name", "email", "phone", "postcode", "card", "account")
PLACEHOLDERS: dict[Kind, str] = {k: f"[{k.upper()}]" for k in KINDS}
PLACEHOLDER_RE = re.compile(r"\[(?:NAME|EMAIL|PHONE|POSTCODE|CARD|ACCOUNT)\]")
PHONE_REGIONS = ("GB", "US")


def wordset(words: str) -> frozenset[str]:
    """A set of words written as one whitespace-separated string."""
    return frozenset(words.split())


@dataclass(frozen=True)
class Span:
    """One piece of personal data found in a text: ``text[start:end]`` is a ``kind``."""

    start: int
    end: int
    kind: Kind


@dataclass
class Masked:
    """A text with its personal data replaced, and how many of each kind were replaced."""

    text: str
    counts: Counter[str] = field(default_factory=Counter)


# --- cues ------------------------------------------------------------------------------------
_KEEP_CUE = re.compile(
    r"(?:order|booking|reservation|tracking|parcel|consignment|invoice|receipt|ticket|case|"
    r"incident|complaint|claim|reference|ref|confirmation|transaction|payment|item|sku|"
    r"serial|model|flight|train|room)s?(?:\s+(?:number|no\.?|num|id|code))?\s*(?:is|was|:|#)?"
    r"\s*#?\s*$",
    re.I,
)
_PHONE_CUE = re.compile(
    r"(?:phone|mobile|cell|tel|telephone|landline|number|call me|ring me|text me|reach me|"
    r"whatsapp|contact)\b[^.?!\n]{0,20}$",
    re.I,
)
_CARD_CUE = re.compile(r"\b(?:card|visa|mastercard|amex|debit|credit)\b[^.?!\n]{0,25}$", re.I)
_SORT_CUE = re.compile(r"\bsort\s*code\b[^.?!\n]{0,12}$", re.I)
_ACCOUNT = re.compile(
    r"\b(?:account|acct|a/c|membership|member|customer|policy|loyalty|iban)"
    r"(?:\s+(?:number|no\.?|num|#|id))?\s*(?:is|was|:|#)?\s*(?:number\s+)?"
    r"(?P<id>[A-Z0-9][A-Z0-9 -]{4,30}[A-Z0-9])",
    re.I,
)
_POSTCODE_CUE = re.compile(
    r"\b(?:post\s*code|postal\s*code|zip(?:\s*code)?)\s*(?:is|was|:)?\s*"
    r"(?P<id>[A-Z0-9][A-Z0-9 -]{2,9}[A-Z0-9])\b",
    re.I,
)

# --- patterns --------------------------------------------------------------------------------
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_DIGIT_RUN = re.compile(r"(?<![\w.,£$€])\d(?:[ -]?\d){12,18}(?![\w]|[.,]\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_SORT_CODE = re.compile(r"(?<![\d/.-])\d{2}([- ])\d{2}\1\d{2}(?![\d/.-])")
_EIGHT = re.compile(r"(?<![\w.,£$€/-])\d{8}(?![\w/]|[.,]\d)")
_UK_POSTCODE = re.compile(
    r"\b(?:GIR ?0AA|(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?|"
    r"[A-PR-UWYZ][0-9][A-HJKPSTUW]|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY])"
    r" ?[0-9][ABD-HJLNP-UW-Z]{2})\b",
    re.I,
)
_CA_POSTCODE = re.compile(r"\b[ABCEGHJ-NPRSTVXY]\d[A-Z] ?\d[A-Z]\d\b")
_US_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|"
    "NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC"
)
_US_ZIP = re.compile(rf"\b(?:{_US_STATES}),?\s+(?P<id>\d{{5}}(?:-\d{{4}})?)\b")

# --- names -----------------------------------------------------------------------------------
# names are written with a capital, whatever the cue's case (hence the scoped -i)
_NAME_WORD = r"(?-i:(?:[A-Z][a-z]+(?:[A-Z][a-z]+)?|[A-Z]['’][A-Z][a-z]+)(?:-[A-Z][a-z]+)?)"
_FULL_NAME = rf"{_NAME_WORD}(?:\s+(?:{_NAME_WORD}|(?-i:[A-Z])\.?))?(?:\s+{_NAME_WORD})?"
_INTRO = re.compile(
    rf"\b(?:my name is|my name's|name's|the name is|call me|i'm called|i am called|"
    rf"spoke to|spoke with|speaking to|speaking with|talked to|talking to|talking with|"
    rf"chatting to|chatting with|ask for|asked for|"
    rf"my (?:husband|wife|partner|son|daughter|mum|mom|dad|mother|father|brother|sister|"
    rf"friend|neighbour|neighbor)(?:'s name is| is called)?|account holder is|in the name of|"
    rf"name on the (?:card|account) is)\s+(?P<name>{_FULL_NAME})",
    re.I,
)
_AFTER_NAME = r"(?=\s*(?:[,.!?;]|$|\s+(?:from|and|here|speaking|calling|on)\b))"
_THIS_IS = re.compile(
    rf"\b(?:this is|it's|it is|i'm|i am|im)\s+(?P<name>{_FULL_NAME}){_AFTER_NAME}", re.I
)
_HERE = re.compile(rf"(?:^|[,.!?]\s+)(?P<name>{_NAME_WORD})\s+here\b")
_TITLE = re.compile(
    rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam)\.?\s+(?P<name>{_NAME_WORD}(?:\s+{_NAME_WORD})?)"
)
_GREETING = re.compile(
    rf"(?:^|[.!?]\s+|\n)\s*(?:hi|hello|hey|dear|thanks|thank you|cheers|morning|"
    rf"good (?:morning|afternoon|evening)|sorry|ok|okay|right|bye|goodbye)[,!]?\s+"
    rf"(?P<name>{_NAME_WORD})(?=\s*(?:[,.!?:]|$|\n))",
    re.I,
)
_SIGN_OFF = re.compile(rf"\n\s*[-–—]*\s*(?P<name>{_FULL_NAME})\s*$")
# Capitalised words the name cues catch that are not names.
NOT_NAMES = wordset(
    """
    a an the i me you he she it we they my your his her our their this that these those
    again all everyone everybody there here team guys folks so very much lot lots for yes no
    not just really sure okay ok fine great good well sorry please thanks thank hello hi hey
    monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday
    january february march april may june july august september october november december
    customer agent support service services manager supervisor sir madam mate love dear
    bank broadband account order help chat home work still now then what why how when who
    calling speaking ringing writing waiting trying going getting looking afraid confused
    worried upset angry annoyed frustrated fed tired happy glad sad scared stuck lost new
    back done finished ready about around because if but and or with without from at on in
    mr mrs ms miss mx dr prof order
    """
)
# A capitalised run ending in one of these is a company, not a person ("Northgate Bank").
COMPANY_WORDS = wordset(
    """
    bank banking building society ltd limited plc inc llc co company corp group energy power
    gas water electric electricity airways airlines air rail railways trains telecom mobile
    broadband fibre fiber internet insurance assurance couriers courier parcels post mail
    delivery pharmacy chemist health fitness gym store stores shop supermarket motors
    council housing travel holidays hotels bridal gowns cloud software solutions services
    """
)
_COMPANY_CUE = re.compile(
    r"\b(?:welcome to|contacting|thanks for choosing|thank you for choosing|here at|"
    r"customer (?:service|services|support|care) (?:at|for)|the team at)\s+"
    r"(?P<co>(?-i:[A-Z][\w&'’-]*)(?:\s+(?-i:[A-Z][\w&'’-]*)){0,3})",
    re.I,
)
_COMPANY_RUN = re.compile(r"\b(?P<co>(?:[A-Z][\w&'’-]*\s+){0,3}[A-Z][\w&'’-]*)")


def company_names(texts: Iterable[str]) -> list[str]:
    """Company names in a conversation, most mentioned first: what follows "welcome to",
    "contacting"..., and capitalised runs ending in a word like Bank, Energy or Airways."""
    found: Counter[str] = Counter()
    for text in texts:
        for m in _COMPANY_CUE.finditer(text):
            found[m.group("co").strip()] += 2
        for m in _COMPANY_RUN.finditer(text):
            words = m.group("co").split()
            if len(words) > 1 and words[-1].lower() in COMPANY_WORDS:
                while words and words[0].lower() in NOT_NAMES:
                    words = words[1:]
                if len(words) > 1:
                    found[" ".join(words)] += 1
    return [c for c, _ in found.most_common()]


def _keep_before(text: str, start: int) -> bool:
    """Is the number at ``start`` a reference the trainee needs (an order number...)?"""
    return bool(_KEEP_CUE.search(text[max(0, start - 40) : start]))


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _phones(text: str) -> list[Span]:
    out: list[Span] = []
    seen: set[tuple[int, int]] = set()
    for region in PHONE_REGIONS:
        for leniency in (Leniency.VALID, Leniency.POSSIBLE):
            for m in PhoneNumberMatcher(text, region, leniency=leniency):
                key = (m.start, m.end)
                if key in seen or _keep_before(text, m.start):
                    continue
                if leniency == Leniency.POSSIBLE and not (
                    _PHONE_CUE.search(text[max(0, m.start - 30) : m.start])
                    and len(_digits(m.raw_string)) >= 10
                ):
                    continue
                seen.add(key)
                out.append(Span(m.start, m.end, "phone"))
    # "+44 ..." numbers from anywhere: the plus says it is a phone number
    for plus in re.finditer(r"\+\d[\d ()-]{7,18}\d", text):
        try:
            number = phonenumbers.parse(plus.group(0), None)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            out.append(Span(plus.start(), plus.end(), "phone"))
    return out


def _cards(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _DIGIT_RUN.finditer(text):
        digits = _digits(m.group(0))
        if not 13 <= len(digits) <= 19 or _keep_before(text, m.start()):
            continue
        cued = bool(_CARD_CUE.search(text[max(0, m.start() - 40) : m.start()]))
        if cued or luhn.is_valid(digits):
            out.append(Span(m.start(), m.end(), "card"))
    return out


def _accounts(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _IBAN.finditer(text):
        if iban.is_valid(m.group(0)):
            out.append(Span(m.start(), m.end(), "account"))
    for m in _ACCOUNT.finditer(text):
        value = m.group("id").rstrip(" -")
        if sum(c.isdigit() for c in value) >= 6:
            start = m.start("id")
            out.append(Span(start, start + len(value), "account"))
    sort_codes = [m for m in _SORT_CODE.finditer(text)]
    eights = [m for m in _EIGHT.finditer(text) if not _keep_before(text, m.start())]
    for m in sort_codes:
        near = any(abs(e.start() - m.end()) < 40 or abs(m.start() - e.end()) < 40 for e in eights)
        if near or _SORT_CUE.search(text[max(0, m.start() - 30) : m.start()]):
            out.append(Span(m.start(), m.end(), "account"))
            out.extend(
                Span(e.start(), e.end(), "account")
                for e in eights
                if abs(e.start() - m.end()) < 40 or abs(m.start() - e.end()) < 40
            )
    return out


def _postcodes(text: str) -> list[Span]:
    out = [Span(m.start(), m.end(), "postcode") for m in _UK_POSTCODE.finditer(text)]
    out += [Span(m.start(), m.end(), "postcode") for m in _CA_POSTCODE.finditer(text)]
    out += [Span(m.start("id"), m.end("id"), "postcode") for m in _US_ZIP.finditer(text)]
    out += [
        Span(m.start("id"), m.end("id"), "postcode")
        for m in _POSTCODE_CUE.finditer(text)
        if any(c.isdigit() for c in m.group("id"))
    ]
    return [s for s in out if not _keep_before(text, s.start)]


def _name_tokens(name: str) -> list[str]:
    words = re.findall(r"[A-Za-z][A-Za-z'’-]*", name)
    return [w for w in words if len(w) > 1 and w.lower() not in NOT_NAMES]


def find_names(texts: Iterable[str]) -> set[str]:
    """Names the cues find in a conversation's texts: introductions, titles, greetings,
    people spoken to, sign-offs. Each name's words, for :func:`find_pii` to mask everywhere."""
    texts = list(texts)
    company = {w for c in company_names(texts) for w in c.split()}
    found: set[str] = set()
    for text in texts:
        for rx in (_INTRO, _THIS_IS, _HERE, _TITLE, _GREETING, _SIGN_OFF):
            for m in rx.finditer(text):
                name = m.group("name")
                if any(w.lower() in COMPANY_WORDS for w in name.split()):
                    continue  # "this is Northgate Bank"
                found.update(w for w in _name_tokens(name) if w not in company)
    return found


def _name_spans(text: str, names: Iterable[str]) -> list[Span]:
    words = sorted({w for n in names for w in _name_tokens(n)}, key=len, reverse=True)
    if not words:
        return []
    rx = re.compile(r"(?<![\w\[])(?:" + "|".join(re.escape(w) for w in words) + r")(?![\w\]])")
    return [Span(m.start(), m.end(), "name") for m in rx.finditer(text)]


_PRIORITY: dict[Kind, int] = {
    "email": 0,
    "card": 1,
    "account": 2,
    "phone": 3,
    "postcode": 4,
    "name": 5,
}


def find_pii(text: str, names: Iterable[str] = ()) -> list[Span]:
    """Every piece of personal data in ``text``, in order, without overlaps (an email beats
    a name inside it; a card beats a phone number). ``names``: names known from elsewhere
    in the conversation (speaker labels, :func:`find_names`)."""
    candidates = (
        [Span(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
        + _cards(text)
        + _accounts(text)
        + _phones(text)
        + _postcodes(text)
        + _name_spans(text, [*names, *find_names([text])])
    )
    candidates.sort(key=lambda s: (_PRIORITY[s.kind], s.start, -(s.end - s.start)))
    taken: list[Span] = []
    for s in candidates:
        if PLACEHOLDER_RE.fullmatch(text[s.start : s.end]):
            continue
        if all(s.end <= t.start or s.start >= t.end for t in taken):
            taken.append(s)
    merged: list[Span] = []
    for s in sorted(taken, key=lambda s: s.start):
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and prev.kind == s.kind == "name"
            and not text[prev.end : s.start].strip()
        ):
            merged[-1] = Span(prev.start, s.end, "name")  # "Sarah Jones" is one name
        else:
            merged.append(s)
    return merged


def mask_text(text: str, names: Iterable[str] = ()) -> Masked:
    """``text`` with each piece of personal data replaced by its placeholder."""
    spans = find_pii(text, names)
    out: list[str] = []
    at = 0
    counts: Counter[str] = Counter()
    for s in spans:
        out.append(text[at : s.start])
        out.append(PLACEHOLDERS[s.kind])
        counts[s.kind] += 1
        at = s.end
    out.append(text[at:])
    return Masked("".join(out), counts)


def mask_texts(texts: Sequence[str], names: Iterable[str] = ()) -> tuple[list[str], Counter[str]]:
    """Mask a whole conversation: a name found in one message is masked in all of them."""
    known = set(names) | find_names(texts)
    total: Counter[str] = Counter()
    out: list[str] = []
    for t in texts:
        m = mask_text(t, known)
        out.append(m.text)
        total.update(m.counts)
    return out, total


def has_placeholder(text: str) -> bool:
    return bool(PLACEHOLDER_RE.search(text))
