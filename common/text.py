"""Text patterns shared by the simulation and the model runtime."""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"[.!?…](?:[\"')\]]*)(?=\s)|\n")
"""Where a sentence ends in streamed text: end punctuation (and closing quotes or brackets)
followed by whitespace, or a line break."""

__all__ = ["SENTENCE_END"]
