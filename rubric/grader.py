"""Where a grade is made: per agent turn and technique, used / not used / not scored.

The default path is the fine-tuned turn model (``rubric/turn_model.py``, ONNX): it reads the
customer's preceding words with the agent's turn and gives one probability per technique and
marker, against thresholds chosen on the ``dev`` split. The earlier exemplar classifier
(``rubric/classifier.py``) is kept for comparison and as the fallback when no turn model has
been fitted (``RAPPORT_GRADER_MODEL=exemplar``). When a capable OpenAI-compatible model is
configured, an LLM judge (``rubric/judge.py``) runs too; the combined verdict records which
path decided and flags disagreements. Sentences addressed to the grader
(``rubric/injection.py``) are never scored or quoted.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from common.settings import Settings
from common.turns import Turn
from rubric.classifier import (
    Calibration,
    ExemplarIndex,
    analyse_turn,
    load_calibration_for,
    rubric_hash,
    score,
    segments,
)
from rubric.embeddings import get_encoder
from rubric.guidance import GuidanceStore, Passage
from rubric.injection import addresses_grader
from rubric.protocols import Judge, JudgeBrief, Judgement
from rubric.techniques import Rubric, load_rubric
from rubric.turn_model import MODEL_DIR, TurnModel, get_turn_model

Source = Literal["classifier", "llm_judge", "combined"]
MARKER_THRESHOLD = 0.97  # exemplar likeness alone must be near certain
MARKER_CUE_THRESHOLD = 0.5  # with a cue phrase in the same sentence


class Verdict(BaseModel):
    """One technique on one agent turn."""

    model_config = ConfigDict(extra="forbid")

    used: bool | None = Field(description="True / False, or None when not scored.")
    evidence: str | None = Field(None, description="A verbatim quote from the agent's turn.")
    guidance_ids: list[str] = Field(default_factory=list, description="Guidance passages cited.")
    confidence: float = Field(0.0, ge=0.0, le=1.0)
    source: Source = "classifier"
    disagreement: bool = Field(False, description="The classifier and the LLM judge disagreed.")
    note: str | None = None

    def public(self) -> dict[str, Any]:
        """The stable ``rapport grade`` shape."""
        return {
            "used": self.used,
            "evidence": self.evidence,
            "guidance_ids": self.guidance_ids,
            "confidence": round(self.confidence, 4),
        }


class TurnGrade(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    role: Literal["agent"] = "agent"
    techniques: dict[str, Verdict]
    markers: dict[str, Verdict] = Field(default_factory=dict)


class Summary(BaseModel):
    used: list[str]
    missed: list[str]
    not_scored: list[str]


class TranscriptGrade(BaseModel):
    id: str
    turns: list[TurnGrade]
    summary: Summary

    def public(self) -> dict[str, Any]:
        """The stable ``rapport grade`` output line."""
        return {
            "id": self.id,
            "turns": [
                {
                    "index": t.index,
                    "role": "agent",
                    "techniques": {k: v.public() for k, v in t.techniques.items()},
                }
                for t in self.turns
            ],
            "summary": self.summary.model_dump(),
        }


def verify_evidence(evidence: str | None, turn_text: str) -> str | None:
    """Keep a quote only if it is verbatim text of the agent's turn."""
    if not evidence:
        return None
    quote = evidence.strip().strip('"').strip()
    return quote if quote and quote in turn_text else None


def summarise(turns: Sequence[TurnGrade], technique_ids: Sequence[str]) -> Summary:
    used, missed, not_scored = [], [], []
    for tid in technique_ids:
        vals = [t.techniques[tid].used for t in turns if tid in t.techniques]
        if any(v is True for v in vals):
            used.append(tid)
        elif any(v is False for v in vals):
            missed.append(tid)
        else:
            not_scored.append(tid)
    return Summary(used=used, missed=missed, not_scored=not_scored)


class Grader:
    """Grades transcripts. Build once per process; grading itself is cheap."""

    def __init__(
        self,
        rubric: Rubric,
        index: ExemplarIndex,
        calibration: Calibration,
        guidance: GuidanceStore | None = None,
        judge: Judge | None = None,
        turn_model: TurnModel | Literal["default"] | None = "default",
    ) -> None:
        self.rubric = rubric
        self.index = index
        self.calibration = calibration
        self.guidance = guidance
        self.judge = judge
        if turn_model == "default":
            turn_model = default_turn_model(rubric)
        self.turn_model: TurnModel | None = turn_model

    @classmethod
    def from_settings(cls, settings: Settings, judge: Judge | None = None) -> Grader:
        rubric = load_rubric()
        guidance = GuidanceStore(settings)
        index = ExemplarIndex(rubric, guidance.client)
        model: TurnModel | Literal["default"] | None = (
            None if settings.grader_model == "exemplar" else "default"
        )
        return cls(rubric, index, load_calibration_for(rubric), guidance, judge, model)

    @property
    def technique_ids(self) -> list[str]:
        return self.rubric.technique_ids

    def clear_caches(self) -> None:
        """Forget cached sentence vectors and k-NN answers, so the next grade recomputes all.

        Grades are the same with or without the caches; this is for measuring that (the
        consistency eval) and for timing a cold grade.
        """
        get_encoder().cache_clear()
        self.index.cache_clear()
        if self.turn_model is not None:
            self.turn_model.cache_clear()

    def _cite(self, technique_id: str, vec: np.ndarray, k: int = 2) -> list[str]:
        if self.guidance is None:
            return []
        tags = self.rubric.get(technique_id).guidance_tags
        ids: list[str] = []
        for tag in tags[:1]:
            for p in self.guidance.search(vec.tolist(), tag=tag, k=k):
                if p.id not in ids:
                    ids.append(p.id)
        return ids

    def classify_turn(
        self, agent_text: str, customer_text: str
    ) -> tuple[dict[str, Verdict], dict[str, Verdict]]:
        """The verdicts for one agent turn, plus marker verdicts."""
        if self.turn_model is not None:
            return self._classify_with_model(self.turn_model, agent_text, customer_text)
        return self.classify_with_exemplars(agent_text, customer_text)

    def _classify_with_model(
        self, model: TurnModel, agent_text: str, customer_text: str
    ) -> tuple[dict[str, Verdict], dict[str, Verdict]]:
        segs = segments(agent_text)
        scored = [s for s in segs if s and not addresses_grader(s)]
        verdicts: dict[str, Verdict] = {}
        markers: dict[str, Verdict] = {}
        if not scored:  # nothing addressed to the customer: nothing to credit
            for tid in self.technique_ids:
                verdicts[tid] = Verdict(used=False, confidence=1.0, note="no words to the customer")
            for mid in self.rubric.marker_ids:
                markers[mid] = Verdict(used=False, confidence=1.0)
            return verdicts, markers
        text = agent_text if len(scored) == len(segs) else " ".join(scored)
        pairs = [(customer_text, text)]
        if len(scored) > 1:
            pairs += [(customer_text, s) for s in scored]
        probs = model.predict(pairs)
        turn_p, seg_p = probs[0], (probs[1:] if len(scored) > 1 else probs[:1])
        vecs = get_encoder().encode(scored) if self.guidance is not None else None
        labels = model.labels
        for tid in [*self.technique_ids, *self.rubric.marker_ids]:
            if tid not in labels:
                v = Verdict(
                    used=None, note="not in the fitted turn model yet: run `rapport rubric fit`"
                )
            else:
                j = labels.index(tid)
                cal = model.card.calibration[tid]
                s = float(turn_p[j])
                used: bool | None = s >= cal.threshold
                if abs(s - cal.threshold) < cal.abstain_band:
                    used = None
                best = int(np.argmax(seg_p[:, j]))
                cite = (
                    self._cite(tid, vecs[best])
                    if vecs is not None and tid in self.technique_ids
                    else []
                )
                v = Verdict(
                    used=used,
                    evidence=verify_evidence(scored[best] if used else None, agent_text),
                    guidance_ids=cite,
                    confidence=s if used else 1.0 - s,
                )
            (verdicts if tid in self.technique_ids else markers)[tid] = v
        return verdicts, markers

    def classify_with_exemplars(
        self, agent_text: str, customer_text: str
    ) -> tuple[dict[str, Verdict], dict[str, Verdict]]:
        """The exemplar classifier's verdicts (the pre-turn-model grader), for comparison."""
        a = analyse_turn(self.index, agent_text, customer_text)
        verdicts: dict[str, Verdict] = {}
        for tid in self.technique_ids:
            cal = self.calibration.techniques[tid]
            s = score(cal, a.features[tid])
            used: bool | None = s >= cal.threshold
            if abs(s - cal.threshold) < cal.abstain_band:
                used = None
            evidence = a.best_segment[tid] if used else None
            seg_i = a.segments.index(a.best_segment[tid])
            verdicts[tid] = Verdict(
                used=used,
                evidence=verify_evidence(evidence, agent_text),
                guidance_ids=self._cite(tid, a.segment_vectors[seg_i]),
                confidence=s if used else 1.0 - s,
            )
        markers: dict[str, Verdict] = {}
        # A marker is shown as a warning, so it needs two signals: the sentence resembles the
        # marker's exemplars AND carries one of its cue phrases (or resembles them very strongly).
        flagged = [
            i
            for i, (p, cue) in enumerate(zip(a.dismissive_probs, a.dismissive_cues, strict=True))
            if (cue and p >= MARKER_CUE_THRESHOLD) or p >= MARKER_THRESHOLD
        ]
        for mid in self.rubric.marker_ids:
            hit = bool(flagged)
            j = (
                max(flagged, key=lambda i: a.dismissive_probs[i])
                if flagged
                else int(np.argmax(a.dismissive_probs))
            )
            p = float(a.dismissive_probs[j])
            markers[mid] = Verdict(
                used=hit,
                evidence=verify_evidence(a.segments[j] if hit else None, agent_text),
                guidance_ids=[],
                confidence=p if hit else 1.0 - p,
            )
        return verdicts, markers

    def grade_turns(
        self,
        turns: Sequence[Turn | Mapping[str, str]],
        only: Collection[int] | None = None,
    ) -> list[TurnGrade]:
        """Grade every agent turn, or only the agent turns whose indices are in ``only``.

        A turn's verdicts depend on its own text and the customer turn before it (and, with a
        judge, on the whole transcript, which the judge still sees), so grading a subset
        gives those turns exactly the verdicts a full grade would.
        """
        norm = [t if isinstance(t, Turn) else Turn.from_dict(t) for t in turns]
        out: list[TurnGrade] = []
        for i, t in enumerate(norm):
            if t.role != "agent" or (only is not None and i not in only):
                continue
            customer = next((p.text for p in reversed(norm[:i]) if p.role == "customer"), "")
            verdicts, markers = self.classify_turn(t.text, customer)
            out.append(TurnGrade(index=i, techniques=verdicts, markers=markers))
        if self.judge is not None and out:
            out = combine(norm, out, self.judge.judge(norm, self.judge_brief()))
        return out

    def judge_brief(self) -> JudgeBrief:
        """What the judge is told besides the transcript: the rubric and, with a guidance
        store, the passage that best matches each technique's definition."""
        guidance: dict[str, list[Passage]] = {}
        if self.guidance is not None:
            for t in self.rubric.techniques:
                if t.kind == "technique":
                    guidance[t.id] = self.guidance.search(t.definition, tag=t.guidance_tags[0], k=1)
        return JudgeBrief(self.rubric, guidance)

    def grade_transcript(
        self, transcript_id: str, turns: Sequence[Turn | Mapping[str, str]]
    ) -> TranscriptGrade:
        graded = self.grade_turns(turns)
        return TranscriptGrade(
            id=transcript_id, turns=graded, summary=summarise(graded, self.technique_ids)
        )


def combine(
    turns: Sequence[Turn], grades: Sequence[TurnGrade], judgement: Judgement
) -> list[TurnGrade]:
    """The classifier's grades with the judge's verdicts folded in, as new grades (the
    inputs are left as they were).

    Where the judge gave a verdict it decides, with its evidence if that is verbatim text of
    the turn; agreement keeps the classifier's confidence, a lone or overriding judge verdict
    is reported as a coin-flip's worth (the judge gives no probability). Where it gave none,
    the classifier's verdict stands with a note saying the judge did not score it.
    """
    verdicts, error = judgement
    out: list[TurnGrade] = []
    for g in grades:
        techniques: dict[str, Verdict] = {}
        for tid, cv in g.techniques.items():
            jv = verdicts.get(g.index, {}).get(tid)
            if jv is None:
                note = error or "judge output for this verdict was unparseable: not scored by judge"
                techniques[tid] = cv.model_copy(update={"note": note})
                continue
            evidence = verify_evidence(jv.evidence, turns[g.index].text)
            disagree = cv.used is not None and cv.used != jv.used
            agree = cv.used is not None and cv.used == jv.used
            techniques[tid] = cv.model_copy(
                update={
                    "used": jv.used,
                    "evidence": evidence if jv.used else None,
                    "confidence": cv.confidence if agree else 0.5,
                    "source": "combined" if agree else "llm_judge",
                    "disagreement": disagree,
                    "note": "classifier said " + str(cv.used) if disagree else None,
                }
            )
        out.append(g.model_copy(update={"techniques": techniques}))
    return out


def default_turn_model(rubric: Rubric, model_dir: Path = MODEL_DIR) -> TurnModel | None:
    """The shipped turn model, or None (with a warning) when none has been fitted.

    Warns when the rubric changed since the fit: grades still work, but a technique added to
    ``techniques.yaml`` is "not scored" until ``rapport rubric fit`` has run."""
    if not (model_dir / "turn_model.json").exists():
        warnings.warn(
            f"No fitted turn model in {model_dir}; grading with the exemplar classifier. "
            "Run: rapport rubric fit",
            stacklevel=3,
        )
        return None
    model = get_turn_model(model_dir)
    if model.card.rubric_hash != rubric_hash(rubric):
        warnings.warn(stale_message(), stacklevel=3)
    return model


def stale_message() -> str:
    return (
        "The fitted turn model is older than rubric/techniques.yaml; grades still work, "
        "but run 'rapport rubric fit' so edited exemplars and new techniques take effect."
    )
