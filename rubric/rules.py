"""Matching an agent's turn against a persona's ``escalates_when`` / ``softens_when`` rules.

Trainers write these rules as plain sentences ("the agent blames her for the typo"). The
director asks which rules a turn meets; this matcher answers by meaning: a rule is met when
one sentence of the turn is close enough to it in the MiniLM embedding space. Rule
embeddings are cached, so each rule is embedded once per process.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import numpy as np

from rubric.classifier import segments
from rubric.embeddings import get_encoder

DEFAULT_THRESHOLD = 0.5  # measured: intended matches 0.50-0.83, unrelated turns <= 0.35
_LEAD = re.compile(r"^(?:the agent|they|agent)\s+", re.I)


def rule_text(rule: str) -> str:
    """A rule as the agent's behaviour, without the 'the agent …' lead-in."""
    return _LEAD.sub("", rule.strip())


class EmbeddingRuleMatcher:
    """Callable ``(agent_text, rules) -> indices of rules met``."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _rule_vectors(self, rules: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [r for r in rules if r not in self._cache]
            if missing:
                vecs = get_encoder().encode([rule_text(r) for r in missing])
                self._cache.update(zip(missing, vecs, strict=True))
            return np.stack([self._cache[r] for r in rules])

    def similarities(self, agent_text: str, rules: Sequence[str]) -> np.ndarray:
        """Best cosine similarity of any sentence of the turn to each rule."""
        if not rules or not agent_text.strip():
            return np.zeros(len(rules), dtype=np.float32)
        seg = get_encoder().encode(segments(agent_text))
        return np.asarray((seg @ self._rule_vectors(rules).T).max(axis=0))

    def __call__(self, agent_text: str, rules: Sequence[str]) -> list[int]:
        sims = self.similarities(agent_text, rules)
        return [int(i) for i in np.flatnonzero(sims >= self.threshold)]
