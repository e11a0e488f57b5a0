"""The composition root: from :class:`common.settings.Settings` to the services that the web
app (``app.py``) and the command line (the ``cli`` package) run on. Neither imports the other's
wiring; both take it from here.

This is the one place that joins the simulation to the grader: :class:`sim.practice.Practice`
takes a signals function (how the director scores an agent turn) and a rule matcher, and
imports no grader itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.settings import Settings

if TYPE_CHECKING:
    from rubric.grader import Grader
    from rubric.judge import LLMJudge
    from sim.director import RuleMatcher
    from sim.practice import Practice, SignalsFn


def judge_for(settings: Settings) -> LLMJudge | None:
    """An LLM judge only when a capable OpenAI-compatible model is configured."""
    if settings.provider != "openai" or not settings.judge:
        return None
    from providers.registry import get_chat_model
    from rubric.judge import LLMJudge

    return LLMJudge(get_chat_model(settings))


def open_grader(settings: Settings) -> Grader:
    """The session grader for ``settings``, with the LLM judge where one is configured."""
    from rubric.grader import Grader

    return Grader.from_settings(settings, judge=judge_for(settings))


def signals_from_grader(grader: Grader) -> SignalsFn:
    """Per-turn director signals from a :class:`rubric.grader.Grader`."""
    from rubric.grader import TurnGrade
    from sim.director import Signals

    def signals(agent_text: str, customer_text: str) -> Signals:
        verdicts, markers = grader.classify_turn(agent_text, customer_text)
        return Signals.from_grade(TurnGrade(index=0, techniques=verdicts, markers=markers))

    return signals


def grader_signals(settings: Settings) -> SignalsFn:
    """The default signals: the session grader's per-turn verdicts (``rubric/grader.py``)."""
    from rubric.grader import Grader

    return signals_from_grader(Grader.from_settings(settings))


def rule_matcher(settings: Settings) -> RuleMatcher:
    """Matches agent turns against a persona's escalates/softens rules by meaning."""
    from rubric.rules import EmbeddingRuleMatcher

    return EmbeddingRuleMatcher()


def rulings_suite_input(settings: Settings, graders: Sequence[Grader]) -> dict[str, Any]:
    """The ``rulings`` eval suite's input from the deployment's database, leaving out every
    ruling that any of ``graders``' turn models was fitted on (its card lists their ids), so
    the graders compared are all scored on the same held-out rulings."""
    from training.disputes import eval_arguments

    fitted = sorted(
        {rid for g in graders if g.turn_model is not None for rid in g.turn_model.card.ruling_ids}
    )
    return eval_arguments(settings, fitted)


def grading(**overrides: Any) -> dict[str, Any]:
    """The keyword arguments that wire a :class:`sim.practice.Practice` to the grader
    (``signals_factory``, ``matcher_factory``); ``overrides`` replace either."""
    return {"signals_factory": grader_signals, "matcher_factory": rule_matcher, **overrides}


def open_practice(settings: Settings, persona_dir: Path | None = None, **kw: Any) -> Practice:
    """The practice services for ``settings``: its session store, the persona library
    (:func:`sim.persona.library_dir`) and the grader-backed director. ``kw`` goes to
    :class:`sim.practice.Practice` (e.g. another ``signals_factory``)."""
    from sim.practice import Practice

    return Practice.from_settings(settings, persona_dir, **grading(**kw))


__all__ = [
    "grader_signals",
    "grading",
    "judge_for",
    "open_grader",
    "open_practice",
    "rule_matcher",
    "rulings_suite_input",
    "signals_from_grader",
]
