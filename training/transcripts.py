"""Reading a real chat transcript: plain text with speaker prefixes, CSV, or the
``rapport grade`` JSONL, into customer and agent turns.

- **Text**: one message per line, ``Speaker: message`` (a leading time such as ``[10:02]``
  is dropped; lines without a prefix continue the message above). Speakers called agent,
  advisor, support... or customer, caller, client... are mapped by that word, also inside
  a label such as ``Tom (Agent)``; system lines (``System:``, ``Bot:``) are left out. When
  the speakers are names, say which of them are the agent (``agents``); the others are the
  customer. Until then :class:`SpeakersUnclear` lists them.
- **CSV**: a header row with a role column (role, speaker, from, sender, author...) and a
  text column (text, message, content, body...); roles are mapped like text speakers.
- **JSONL**: ``{"id": ..., "turns": [{"role": "customer"|"agent", "text": ...}]}`` per line,
  as ``rapport grade`` reads it (one JSON object spread over several lines works too).

Consecutive messages from the same side are joined into one turn, as a practice session
stores them. Nothing here stores anything: a file either parses completely or raises
:class:`TranscriptError` with a message fit to show the person who uploaded it.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from common.turns import Role, Turn
from training.masking import wordset

Format = Literal["text", "csv", "jsonl"]
FORMATS: tuple[str, ...] = ("auto", "text", "csv", "jsonl")
MAX_BYTES = 1024 * 1024
"""Largest file accepted (1 MiB): a long support chat is well under 100 KB."""
MAX_TURNS = 400
MAX_TURN_CHARS = 8000
MAX_TRANSCRIPTS = 50

AGENT_WORDS = wordset(
    "agent advisor adviser support rep representative operator assistant csr staff "
    "helpdesk specialist consultant associate colleague service care team you"
)
CUSTOMER_WORDS = wordset("customer client caller user visitor member guest me")
SYSTEM_WORDS = wordset("system bot chatbot automated automatic")
ROLE_COLUMNS = ("role", "speaker", "from", "sender", "author", "who", "participant", "party")
TEXT_COLUMNS = ("text", "message", "content", "body", "utterance", "msg", "transcript")

_TIME = re.compile(
    r"^\s*[\[(]?\s*(?:\d{4}-\d{2}-\d{2}[ T])?\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?"
    r"\s*[\])]?\s*[-–—|]?\s*",
    re.I,
)
_PREFIX = re.compile(r"^\s*(?P<label>[^\W\d][^:\n]{0,39}?)\s*:\s*(?P<text>.*)$")


class TranscriptError(ValueError):
    """The file can't be read as a transcript; the message says why and what to do."""


class SpeakersUnclear(TranscriptError):
    """The speakers are names (or unknown labels): say which of them are the agent."""

    def __init__(self, speakers: Sequence[str], message: str) -> None:
        self.speakers = list(speakers)
        super().__init__(message)


@dataclass
class Transcript:
    """One conversation as read: its turns, the format and how each speaker was mapped.
    ``speakers`` holds the labels as written (they may be names: mask before storing)."""

    id: str
    turns: list[Turn]
    format: Format
    speakers: dict[str, Role] = field(default_factory=dict)

    @property
    def agent_turns(self) -> int:
        return sum(1 for t in self.turns if t.role == "agent")

    def as_dicts(self) -> list[dict[str, str]]:
        return [t.as_dict() for t in self.turns]


# --- bytes to text ---------------------------------------------------------------------------
def decode(data: bytes, max_bytes: int = MAX_BYTES) -> str:
    """The file's text: UTF-8 (or UTF-16 with a byte-order mark, or Windows-1252), refusing
    an empty, oversized or binary file."""
    if len(data) > max_bytes:
        raise _too_big(len(data), max_bytes)
    if not data.strip():
        raise TranscriptError("The file is empty: there is no conversation in it.")
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                break
            return _check_text(text)
    if b"\x00" in data:
        raise _binary()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    return _check_text(text)


def _binary() -> TranscriptError:
    return TranscriptError(
        "This file holds binary data, not text. Export the chat as plain text, CSV or JSONL."
    )


def _check_text(text: str) -> str:
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\n\r\t\f")
    bad = text.count("\ufffd") + controls
    if bad > max(3, len(text) // 100):
        raise _binary()
    if not text.strip():
        raise TranscriptError("The file is empty: there is no conversation in it.")
    return text


def read_file(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The file's bytes; an oversized file is refused by its size, before it is read."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_big(size, max_bytes)
        with path.open("rb") as f:
            return f.read(max_bytes + 1)
    except OSError as exc:
        raise TranscriptError(f"Can't read {path.name}: {exc.strerror or exc}") from None


def _too_big(size: int, max_bytes: int) -> TranscriptError:
    return TranscriptError(
        f"The file is {size / 1024 / 1024:.1f} MB; the most a transcript may be is "
        f"{max_bytes // 1024} KB. Split it into single conversations."
    )


# --- speakers --------------------------------------------------------------------------------
def _words(label: str) -> set[str]:
    return set(re.findall(r"[a-z]+", label.lower()))


def role_of(label: str) -> Role | Literal["system"] | None:
    """What a label says by itself: agent, customer, system, or None (a name)."""
    w = _words(label)
    if w & AGENT_WORDS and not w & CUSTOMER_WORDS:
        return "agent"
    if w & CUSTOMER_WORDS and not w & AGENT_WORDS:
        return "customer"
    if "customer" in w and w & {"service", "services", "support", "care", "team"}:
        return "agent"  # "Customer Service: ..."
    if w and w <= SYSTEM_WORDS:
        return "system"
    return None


def _norm(label: str) -> str:
    return " ".join(label.split()).casefold()


def map_speakers(labels: Sequence[str], agents: Iterable[str] = ()) -> dict[str, Role | None]:
    """Each distinct label's role (None for a system line left out). ``agents`` names the
    labels that are the agent; given it, every other non-system label is the customer.
    Without it, two speakers of whom one is named by role are settled by elimination;
    otherwise :class:`SpeakersUnclear`."""
    distinct = list(dict.fromkeys(labels))
    chosen = {_norm(a) for a in agents if a.strip()}
    if chosen:
        unknown = sorted(chosen - {_norm(x) for x in distinct})
        if unknown:
            raise SpeakersUnclear(
                [x for x in distinct if role_of(x) != "system"],
                f"No speaker called {', '.join(unknown)} in this file. "
                f"The speakers are: {', '.join(distinct)}.",
            )
        return {
            x: (
                None
                if role_of(x) == "system" and _norm(x) not in chosen
                else "agent"
                if _norm(x) in chosen
                else "customer"
            )
            for x in distinct
        }
    out: dict[str, Role | None] = {}
    unclear: list[str] = []
    for x in distinct:
        r = role_of(x)
        if r == "system":
            out[x] = None
        elif r is None:
            unclear.append(x)
        else:
            out[x] = r
    if unclear:
        known = {r for r in out.values() if r}
        if len(unclear) == 1 and len(known) == 1:
            out[unclear[0]] = "customer" if known == {"agent"} else "agent"
            unclear = []
    if unclear:
        raise SpeakersUnclear(
            [x for x in distinct if out.get(x) is not None or x in unclear],
            "Which of these speakers is the agent? "
            + ", ".join(unclear)
            + (" (the others are mapped by their labels)" if out else "")
            + ". Choose the agent and import again.",
        )
    return out


# --- formats ---------------------------------------------------------------------------------
def detect_format(text: str, filename: str = "") -> Format:
    suffix = Path(filename).suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    head = text.lstrip()[:1]
    if head in ("{", "["):
        return "jsonl"
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    cells = {c.strip().strip('"').lower() for c in re.split(r"[,;\t|]", first)}
    if len(cells) > 1 and cells & set(ROLE_COLUMNS) and cells & set(TEXT_COLUMNS):
        return "csv"
    return "text"


def _join(rows: Iterable[tuple[Role, str]]) -> list[Turn]:
    turns: list[Turn] = []
    for role, text in rows:
        text = text.strip()
        if not text:
            continue
        if turns and turns[-1].role == role:
            turns[-1] = Turn(role, turns[-1].text + "\n" + text)
        else:
            turns.append(Turn(role, text))
    return turns


def _roled(
    rows: Iterable[tuple[str | None, str]], roles: dict[str, Role | None]
) -> list[tuple[Role, str]]:
    """(role, message) for each row whose speaker has a role (system lines left out)."""
    out: list[tuple[Role, str]] = []
    for label, msg in rows:
        role = roles.get(label) if label is not None else None
        if role is not None:
            out.append((role, msg))
    return out


def _text_lines(text: str) -> list[tuple[str | None, str]]:
    """(label, message) per line; label None for a line that continues the one above."""
    out: list[tuple[str | None, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        line = _TIME.sub("", line, count=1)
        m = _PREFIX.match(line)
        if m and not re.match(r"^https?$", m.group("label"), re.I):
            out.append((m.group("label").strip(), m.group("text")))
        else:
            out.append((None, line.strip()))
    return out


def parse_text(text: str, agents: Iterable[str] = ()) -> Transcript:
    lines = _text_lines(text)
    counts = Counter(label for label, _ in lines if label is not None)
    if not counts:
        raise TranscriptError(
            "No speakers found. Each message should start with who said it, e.g. "
            "'Agent: Hello, how can I help?' and 'Customer: My parcel hasn't come.'"
        )
    chosen = {_norm(a) for a in agents}
    # "Note: ..." inside a message is not a speaker: one-off labels that say no role are
    # text, when there are real speakers besides them
    speakers = {
        label
        for label, n in counts.items()
        if n > 1 or role_of(label) is not None or _norm(label) in chosen
    }
    if len(speakers) < 2:
        speakers = set(counts)
    rows: list[tuple[str | None, str]] = []
    for label, msg in lines:
        if label is not None and label in speakers:
            rows.append((label, msg))
        elif rows:
            extra = f"{label}: {msg}" if label is not None else msg
            rows[-1] = (rows[-1][0], rows[-1][1] + "\n" + extra)
        # lines before the first speaker are a header (a title, a date): left out
    roles = map_speakers([lbl for lbl, _ in rows if lbl is not None], agents)
    turns = _join(_roled(rows, roles))
    return _finish("conversation", turns, "text", {k: v for k, v in roles.items() if v})


def _sniff(text: str) -> str:
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    return max(",;\t|", key=first.count)


def parse_csv(text: str, agents: Iterable[str] = ()) -> Transcript:
    reader = csv.reader(io.StringIO(text), delimiter=_sniff(text))
    try:
        rows = [r for r in reader if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise TranscriptError(f"This CSV can't be read: {exc}.") from None
    if not rows:
        raise TranscriptError("The file is empty: there is no conversation in it.")
    header = [h.strip().strip("\ufeff").lower() for h in rows[0]]
    role_col = next((header.index(c) for c in ROLE_COLUMNS if c in header), None)
    text_col = next((header.index(c) for c in TEXT_COLUMNS if c in header), None)
    if role_col is None or text_col is None:
        raise TranscriptError(
            "A CSV transcript needs a header row with a role column ("
            + ", ".join(ROLE_COLUMNS[:4])
            + ") and a text column ("
            + ", ".join(TEXT_COLUMNS[:4])
            + "). This one has: "
            + ", ".join(h or "(blank)" for h in header)
            + "."
        )
    body: list[tuple[str, str]] = []
    for n, r in enumerate(rows[1:], start=2):
        if len(r) <= max(role_col, text_col):
            raise TranscriptError(f"Row {n} has {len(r)} column(s); the header has {len(header)}.")
        if not r[role_col].strip():
            raise TranscriptError(f"Row {n} has no {header[role_col]}.")
        body.append((r[role_col].strip(), r[text_col]))
    if not body:
        raise TranscriptError("The CSV has a header but no messages.")
    roles = map_speakers([lbl for lbl, _ in body], agents)
    turns = _join(_roled(body, roles))
    return _finish("conversation", turns, "csv", {k: v for k, v in roles.items() if v})


def _records(text: str) -> list[tuple[int, object]]:
    stripped = text.strip()
    try:  # one JSON value: an object, or a list of objects
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        whole = None
    else:
        if isinstance(whole, list):
            return [(n, x) for n, x in enumerate(whole, 1)]
        return [(1, whole)]
    out: list[tuple[int, object]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise TranscriptError(f"Line {n} is not valid JSON: {exc.msg}.") from None
    return out


def parse_jsonl(text: str) -> list[Transcript]:
    out: list[Transcript] = []
    for n, rec in _records(text):
        where = f"Line {n}"
        if not isinstance(rec, dict) or not isinstance(rec.get("turns"), list):
            raise TranscriptError(
                f'{where}: expected {{"id": "...", "turns": [{{"role": "customer"|"agent", '
                f'"text": "..."}}]}} (the rapport grade format).'
            )
        rid = rec.get("id", f"conversation-{n}")
        if not isinstance(rid, str):
            raise TranscriptError(f"{where}: id must be a string.")
        rows: list[tuple[Role, str]] = []
        for i, t in enumerate(rec["turns"]):
            if (
                not isinstance(t, dict)
                or t.get("role") not in ("customer", "agent")
                or not isinstance(t.get("text"), str)
            ):
                raise TranscriptError(
                    f"{where}, turn {i}: each turn needs role customer or agent, and text."
                )
            rows.append((t["role"], t["text"]))
        out.append(_finish(rid, _join(rows), "jsonl", {}, where=f"{where}: "))
    if not out:
        raise TranscriptError("The file is empty: there is no conversation in it.")
    if len(out) > MAX_TRANSCRIPTS:
        raise TranscriptError(
            f"The file holds {len(out)} conversations; import at most {MAX_TRANSCRIPTS} at once."
        )
    return out


def _finish(
    tid: str, turns: list[Turn], fmt: Format, speakers: dict[str, Role], where: str = ""
) -> Transcript:
    if not any(t.role == "agent" for t in turns):
        raise TranscriptError(
            f"{where}No agent turns found: there is nothing to grade. Check which speaker "
            "is the agent."
        )
    if not any(t.role == "customer" for t in turns):
        raise TranscriptError(f"{where}No customer turns found: this is only the agent talking.")
    if len(turns) > MAX_TURNS:
        raise TranscriptError(f"{where}{len(turns)} turns is too long; the most is {MAX_TURNS}.")
    long = next((i for i, t in enumerate(turns) if len(t.text) > MAX_TURN_CHARS), None)
    if long is not None:
        raise TranscriptError(
            f"{where}Turn {long + 1} is over {MAX_TURN_CHARS:,} characters: is this a chat?"
        )
    return Transcript(tid, turns, fmt, speakers)


def parse(
    data: bytes, filename: str = "", fmt: str = "auto", agents: Iterable[str] = ()
) -> list[Transcript]:
    """Every conversation in a file (text and CSV hold one; JSONL one per line).
    Raises :class:`TranscriptError` (or :class:`SpeakersUnclear`) and returns nothing
    partial."""
    if fmt not in FORMATS:
        raise TranscriptError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")
    text = decode(data)
    kind = detect_format(text, filename) if fmt == "auto" else fmt
    agents = list(agents)
    if kind == "jsonl":
        return parse_jsonl(text)
    if kind == "csv":
        return [parse_csv(text, agents)]
    return [parse_text(text, agents)]


def speaker_names(transcript: Transcript) -> list[str]:
    """Labels that look like people's names (no role word): to mask wherever they appear."""
    out: list[str] = []
    for label in transcript.speakers:
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z'’-]+", label)]
        out.extend(
            w
            for w in words
            if w.lower() not in AGENT_WORDS | CUSTOMER_WORDS | SYSTEM_WORDS and w[0].isupper()
        )
    return out
