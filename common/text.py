"""Text patterns shared by the simulation and the model runtime."""

from __future__ import annotations

import re
from collections.abc import Sequence

SENTENCE_END = re.compile(r"[.!?…](?:[\"')\]]*)(?=\s)|\n")
"""Where a sentence ends in streamed text: end punctuation (and closing quotes or brackets)
followed by whitespace, or a line break."""

STEM_SUFFIXES = ("ing", "ed", "es", "s")


def stem(
    word: str,
    *,
    min_stem: int = 3,
    suffixes: Sequence[str] = STEM_SUFFIXES,
    keep_ss: bool = False,
    trim_e: bool = False,
    undouble: bool = False,
) -> str:
    """A crude English stem of a lowercase word, for matching words, not for showing them.

    Strips the first of ``suffixes`` the word ends with, if at least ``min_stem`` letters
    are left ("charged" -> "charg"). Then, as asked:

    - ``keep_ss``: a word ending in "ss" keeps its "s" ("address", not "addres");
    - ``undouble``: a doubled final consonant other than l or s is undoubled
      ("logged" -> "logg" -> "log");
    - ``trim_e``: a final "e" is dropped from stems over three letters, so "charge" and
      "charged" meet at "charg" (with ``undouble``, only when nothing was undoubled).

    Each caller keeps the options it has always matched with: the director's whole-phrase
    matching, the guard's leak check and the behaviour checks would match differently with
    one another's.
    """
    w = word
    for suffix in suffixes:
        if w.endswith(suffix) and len(w) - len(suffix) >= min_stem:
            if keep_ss and suffix == "s" and w.endswith("ss"):
                break
            w = w[: -len(suffix)]
            break
    if undouble and len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        return w[:-1]
    if trim_e and len(w) > 3 and w.endswith("e"):
        return w[:-1]
    return w


__all__ = ["SENTENCE_END", "STEM_SUFFIXES", "stem"]
