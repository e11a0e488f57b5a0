"""Reply length: the words a persona's style allows."""

from __future__ import annotations

from sim.persona import Persona
from sim.postprocess import word_count

# --------------------------------------------------------------------------------------------
# Reply length
# --------------------------------------------------------------------------------------------

_CHANNEL_MAX = {"chat": 45, "phone": 60, "email": 90}
_TERSE_MIN = ("one word", "fragment", "very short", "clipped", "minimal", "terse")
_TERSE_MAX = ("one word", "fragment", "very short", "clipped", "terse", "one line")
_LONG = ("paragraph", "chatty", "side stor", "rambl", "long-winded", "at length")


def words(text: str) -> int:
    """Words in a reply, as the length bounds count them."""
    return word_count(text)


def length_bounds(persona: Persona) -> tuple[int, int]:
    """(fewest, most) words in one reply: the persona's ``reply_length``, and for what it leaves
    out, a default from its speaking style and channel. A one-word reply ("Okay.") is human,
    except from someone whose style is paragraphs, chat or side stories: they need two words
    at least. A terse style ("one word", "fragments", "clipped") caps replies at 30 words;
    paragraph or chatty styles get half as much again as their channel's cap (chat 45, phone
    60, email 90). The cap is never below the persona's own opening line."""
    style = persona.speaking_style.lower()
    wordy = any(k in style for k in _LONG) and not any(k in style for k in _TERSE_MIN)
    low = 2 if wordy else 1
    high = _CHANNEL_MAX.get(persona.scenario.channel, 45)
    if any(k in style for k in _LONG):
        high = high * 3 // 2
    elif any(k in style for k in _TERSE_MAX):
        high = 30
    high = max(high, words(persona.opening_line))
    own = persona.reply_length
    if own is not None:
        low = own.min_words if own.min_words is not None else low
        high = own.max_words if own.max_words is not None else max(high, low)
        low = min(low, high)
    return low, high
