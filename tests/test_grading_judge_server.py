"""The LLM-judge path end to end against a real OpenAI-compatible server (llama-cpp-python's)
running the tiny SmolLM2 model.

SmolLM2-135M is not a capable judge: what is tested is the plumbing (``response_format``
json_object accepted, strict parsing, fallbacks, verbatim evidence), not the grades.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.settings import Settings
from common.turns import Turn
from providers.registry import get_chat_model
from rubric.grader import Grader
from rubric.judge import LLMJudge, judge_prompt
from rubric.techniques import CORE_TECHNIQUES
from tests.servers import llama_server
from tests.test_grading_classifier import shared_grader

pytestmark = pytest.mark.server

TURNS = [
    {"role": "customer", "text": "My card was charged twice for the same hotel booking."},
    {
        "role": "agent",
        "text": "Being charged twice is really stressful. Which dates did the payments go out?",
    },
    {"role": "customer", "text": "The 3rd and the 4th of March, both for 240 euros."},
    {"role": "agent", "text": "I'll refund the second payment today and email you the receipt."},
]


@pytest.fixture(scope="module")
def tiny_server(smollm2_path: Path) -> Iterator[str]:
    # The judge prompt is ~1.4k tokens; 4096 leaves room for 400 tokens of answer.
    with llama_server(smollm2_path, n_ctx=4096) as base:
        yield base


@pytest.fixture(scope="module")
def judged_grader(
    tiny_server: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Grader, LLMJudge]:
    settings = Settings(
        provider="openai",
        base_url=tiny_server,
        model="tiny",
        max_tokens=400,
        data_dir=tmp_path_factory.mktemp("judge-data"),
    )
    judge = LLMJudge(get_chat_model(settings))
    base = shared_grader(tmp_path_factory)
    return Grader(base.rubric, base.index, base.calibration, judge=judge), judge


def test_server_accepts_the_json_object_request(judged_grader: tuple[Grader, LLMJudge]) -> None:
    grader, judge = judged_grader
    verdicts, error = judge.judge([Turn(t["role"], t["text"]) for t in TURNS], grader.judge_brief())
    assert error is None, f"the judge call failed: {error}"
    assert set(verdicts) == {1, 3}
    assert all(set(v) == set(CORE_TECHNIQUES) for v in verdicts.values())
    # json_object mode is honoured: unless cut off by max_tokens, the reply is a JSON object
    turns = [Turn(t["role"], t["text"]) for t in TURNS]
    msg = judge.chain.invoke(judge_prompt(grader.judge_brief(), turns))
    if msg.response_metadata.get("finish_reason") == "stop":
        assert isinstance(json.loads(str(msg.content)), dict), msg.content


def test_grading_through_the_tiny_judge(judged_grader: tuple[Grader, LLMJudge]) -> None:
    grader, _ = judged_grader
    classifier = Grader(grader.rubric, grader.index, grader.calibration).grade_turns(TURNS)
    graded = grader.grade_turns(TURNS)
    assert [g.index for g in graded] == [1, 3]
    for g, c in zip(graded, classifier, strict=True):
        assert set(g.techniques) == set(CORE_TECHNIQUES)
        for tid, v in g.techniques.items():
            cv = c.techniques[tid]
            assert v.source in {"combined", "llm_judge", "classifier"}
            assert v.evidence is None or v.evidence in TURNS[g.index]["text"]
            assert v.evidence is None or v.used
            note = v.note or ""
            assert "InternalServerError" not in note and "judge failed" not in note, note
            if v.source == "classifier":  # the judge's answer for it didn't validate
                assert "unparseable" in note
                assert (v.used, v.evidence) == (cv.used, cv.evidence)
            elif v.source == "llm_judge":
                assert v.disagreement and v.used is not cv.used and "classifier" in note
            else:
                assert not v.disagreement and v.used == cv.used and v.note is None
        assert g.markers == c.markers
