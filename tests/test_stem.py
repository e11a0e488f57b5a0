"""One stemmer (``common.text.stem``) for the director, the guard and the behaviour checks,
each with the options that reproduce the stemmer it had before, word for word."""

from __future__ import annotations

import re
from pathlib import Path

from common.text import stem

ROOT = Path(__file__).resolve().parent.parent


# The three stemmers as they were, for reference.
def director_before(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def guard_before(word: str) -> str:
    w = word.lower()
    for suffix, keep in (("ing", 3), ("ed", 3), ("s", 3)):
        if w.endswith(suffix) and len(w) - len(suffix) >= keep:
            if suffix == "s" and w.endswith("ss"):
                break
            w = w[: -len(suffix)]
            break
    return w[:-1] if w.endswith("e") and len(w) > 3 else w


def behaviours_before(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # "logged" -> "logg" -> "log"
    elif len(word) > 3 and word.endswith("e"):
        word = word[:-1]  # "charge" and "charged" -> "charg"
    return word


def vocabulary() -> set[str]:
    """Every word in the personas, the rubric and the guard's probes, plus edge cases."""
    files = [
        *ROOT.glob("personas/*.yaml"),
        ROOT / "rubric" / "techniques.yaml",
        ROOT / "sim" / "guard" / "probes.yaml",
    ]
    words = {
        w
        for f in files
        for w in re.findall(r"[^\W\d_]+|[a-z0-9£$€]+", f.read_text(encoding="utf-8").lower())
    }
    edge = "s es ed ing sing seed uses goes yes sees trees agrees address addresses class "
    edge += "logged logging charge charged charges bless stressed hopping fee fees ee eed"
    return words | set(edge.split())


def test_the_shared_stemmer_matches_each_old_one_word_for_word() -> None:
    from sim import behaviours, director
    from sim.guard import checks

    words = sorted(vocabulary())
    assert len(words) > 2000
    for w in words:
        assert stem(w, min_stem=4) == director_before(w), w
        assert checks._stem(w) == guard_before(w), w
        assert stem(w, undouble=True, trim_e=True) == behaviours_before(w), w
    # and each module's matching uses it
    assert director._words("They logged charges") == ["they", "logg", "charg"]
    assert behaviours.content_words("They logged charges") == {"log", "charg"}
