"""The default grader: a deterministic, retrieval-grounded classifier over the rubric.

For each agent turn and technique it computes a few features, then a calibrated logistic
score:

- how much the turn's best sentence looks like the technique's exemplars (a logistic model
  fitted on the exemplar embeddings, which are stored in and read back from Chroma);
- a k-NN vote among the nearest exemplars retrieved from Chroma;
- the rubric's cue phrases, whether the turn asks a question, and for ``affirm`` how close
  the agent's words are to what the customer just said;
- the dismissive marker (blame, minimising, sarcasm), which cancels credit.

The weights live in ``rubric/calibration.json``, fitted on the gold ``dev`` split only
(``rapport rubric fit``). Nothing here samples, so the same input always grades the same.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from rubric.embeddings import get_encoder
from rubric.techniques import Rubric, Technique

CALIBRATION_PATH = Path(__file__).resolve().parent / "calibration.json"
FEATURES = (
    "sentence_exemplar_prob",
    "turn_exemplar_prob",
    "cue",
    "question",
    "customer_overlap",
    "dismissive_prob",
    "length",
    "dismissive_cue",
    "knn_vote",
)
KNN_K = 5
KNN_CACHE_SIZE = 4096  # k-NN answers kept (one per technique and distinct turn)
_SPLIT = re.compile(
    r"(?<=[.!?])\s+|;\s+|,\s+(?=(?:but|although|though|however|and then)\b)|\s+[-–—]\s+|\n+"
)


def segments(text: str) -> list[str]:
    """Sentences and clauses of a turn, each a verbatim substring of it."""
    parts = [p.strip() for p in _SPLIT.split(text) if p and p.strip()]
    return parts or [text.strip()]


def _norm(text: str) -> str:
    return text.lower().replace("\u2019", "'").replace("\u2018", "'")


def cue_hit(technique: Technique, text: str) -> bool:
    low = _norm(text)
    return any(c in low for c in technique.cues)


class TechniqueCalibration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: list[float]
    bias: float
    threshold: float = Field(0.5, description="Score at or above which the technique is 'used'.")
    abstain_band: float = Field(
        0.0, description="Scores within this distance of the threshold are 'not scored'."
    )


class Calibration(BaseModel):
    """Fitted stacking weights per technique (see ``rubric/fit.py``)."""

    model_config = ConfigDict(extra="forbid")

    rubric_hash: str
    features: list[str]
    fitted_on: str
    techniques: dict[str, TechniqueCalibration]

    @classmethod
    def load(cls, path: Path = CALIBRATION_PATH) -> Calibration:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def save(self, path: Path = CALIBRATION_PATH) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")


def rubric_hash(rubric: Rubric) -> str:
    """Hash of what the classifier learns from: ids, kinds, cues and exemplars."""
    parts = [
        t.model_dump_json(include={"id", "kind", "cues", "positive", "negative"})
        for t in rubric.techniques
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


class ExemplarIndex:
    """The rubric's exemplar sentences in a Chroma collection, plus a per-item logistic model.

    The collection name carries the rubric's hash, so editing ``techniques.yaml`` builds a
    fresh index on next start and stale ones are dropped.
    """

    def __init__(self, rubric: Rubric, client: Any) -> None:
        self.rubric = rubric
        self.hash = rubric_hash(rubric)
        name = f"rapport_exemplars_{self.hash}"
        for c in client.list_collections():
            cname = c if isinstance(c, str) else c.name
            if cname.startswith("rapport_exemplars_") and cname != name:
                client.delete_collection(cname)
        self.collection = client.get_or_create_collection(
            name, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        ids, docs, metas = [], [], []
        for t in rubric.techniques:
            for label, sents in ((1, t.positive), (0, t.negative)):
                for i, s in enumerate(sents):
                    ids.append(f"{t.id}:{label}:{i}")
                    docs.append(s)
                    metas.append({"technique": t.id, "label": label})
        if self.collection.count() != len(ids):
            if self.collection.count():
                client.delete_collection(name)
                self.collection = client.get_or_create_collection(
                    name, metadata={"hnsw:space": "cosine"}, embedding_function=None
                )
            vecs = get_encoder().encode(docs)
            for start in range(0, len(ids), 256):
                sl = slice(start, start + 256)
                self.collection.add(
                    ids=ids[sl], documents=docs[sl], metadatas=metas[sl], embeddings=vecs[sl]
                )
        got = self.collection.get(ids=ids, include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
        self.models: dict[str, LogisticRegression] = {}
        for t in rubric.techniques:
            tids = [i for i in ids if i.startswith(f"{t.id}:")]
            X = np.array([by_id[i] for i in tids], dtype=np.float32)
            y = np.array([int(i.split(":")[1]) for i in tids])
            self.models[t.id] = LogisticRegression(
                C=8.0, class_weight="balanced", max_iter=5000
            ).fit(X, y)
        self._knn_cache: OrderedDict[tuple[Any, ...], list[list[dict[str, Any]]]] = OrderedDict()
        self._lock = threading.Lock()
        # predict_proba's input validation costs more than the arithmetic on a few rows, and
        # the grader calls it ~10 times per turn; prob() does the same arithmetic directly.
        self._linear = {
            tid: (m.coef_.T, m.intercept_, m.classes_.tolist() == [0, 1])
            for tid, m in self.models.items()
        }

    def prob(self, technique_id: str, vecs: np.ndarray) -> np.ndarray:
        """P(label 1) for each row, exactly ``models[id].predict_proba(vecs)[:, 1]``."""
        coef_t, intercept, binary = self._linear[technique_id]
        if not binary or vecs.ndim != 2 or vecs.dtype not in (np.float32, np.float64):
            probs: np.ndarray = self.models[technique_id].predict_proba(vecs)[:, 1]
            return probs
        # sklearn's _predict_proba_lr for a binary model: expit(X @ coef.T + intercept)
        scores = (vecs @ coef_t + intercept).reshape(-1)
        out: np.ndarray = expit(scores, out=scores)
        return out

    def nearest(
        self, technique_id: str, vecs: np.ndarray, k: int = KNN_K
    ) -> list[list[dict[str, Any]]]:
        """The k nearest exemplars of one technique for each vector (retrieved from Chroma).

        Answers are cached by the exact query (technique, k and the vectors' bytes): the
        collection does not change after ``__init__``, so the same query gets the same answer.
        A turn graded again (an eval variant that leaves the agent's words alone) then costs
        no Chroma round trip.
        """
        key = (technique_id, k, vecs.shape, vecs.dtype.str, vecs.tobytes())
        with self._lock:
            hit = self._knn_cache.get(key)
            if hit is not None:
                self._knn_cache.move_to_end(key)
        if hit is None:
            hit = self._query(technique_id, vecs, k)
            with self._lock:
                self._knn_cache[key] = hit
                while len(self._knn_cache) > KNN_CACHE_SIZE:
                    self._knn_cache.popitem(last=False)
        return [[dict(n) for n in row] for row in hit]

    def cache_clear(self) -> None:
        """Forget cached k-NN answers."""
        with self._lock:
            self._knn_cache.clear()

    def _query(self, technique_id: str, vecs: np.ndarray, k: int) -> list[list[dict[str, Any]]]:
        res = self.collection.query(
            query_embeddings=vecs.tolist(),
            n_results=k,
            where={"technique": technique_id},
            include=["documents", "metadatas", "distances"],
        )
        return [
            [
                {"text": d, "label": int(m["label"]), "similarity": 1.0 - float(dist)}
                for d, m, dist in zip(docs, metas, dists, strict=True)
            ]
            for docs, metas, dists in zip(
                res["documents"], res["metadatas"], res["distances"], strict=True
            )
        ]


def knn_vote(neighbours: list[dict[str, Any]]) -> float:
    w = np.array([max(n["similarity"], 1e-6) for n in neighbours])
    y = np.array([n["label"] for n in neighbours])
    return float((w * y).sum() / w.sum()) if len(w) else 0.0


@dataclass
class TurnAnalysis:
    """Everything the classifier derived from one agent turn."""

    segments: list[str]
    features: dict[str, np.ndarray]
    best_segment: dict[str, str]
    segment_vectors: np.ndarray
    dismissive_probs: np.ndarray
    dismissive_cues: list[bool]


def analyse_turn(index: ExemplarIndex, agent_text: str, customer_text: str) -> TurnAnalysis:
    """Compute the feature vector for every technique of one turn."""
    rubric = index.rubric
    segs = segments(agent_text)
    cust_segs = segments(customer_text) if customer_text.strip() else []
    # One encoder call for the turn, its sentences and the customer's; a text's vector does
    # not depend on what it is batched with, and repeated texts come from the encoder's cache.
    vecs = get_encoder().encode([*segs, agent_text, *cust_segs])
    n = len(segs)
    seg_vecs, turn_vec = vecs[:n], vecs[n : n + 1]
    cust_vecs = vecs[n + 1 :] if cust_segs else None
    overlap = float((seg_vecs @ cust_vecs.T).max()) if cust_vecs is not None else 0.0
    dis_ids = rubric.marker_ids
    dis_probs = (
        np.max([index.prob(m, seg_vecs) for m in dis_ids], axis=0)
        if dis_ids
        else np.zeros(len(segs))
    )
    dis_cue = any(cue_hit(rubric.get(m), agent_text) for m in dis_ids)
    features: dict[str, np.ndarray] = {}
    best: dict[str, str] = {}
    for tid in rubric.technique_ids:
        t = rubric.get(tid)
        p = index.prob(tid, seg_vecs)
        votes = [knn_vote(nb) for nb in index.nearest(tid, seg_vecs)]
        best[tid] = segs[int(np.argmax(p))]
        features[tid] = np.array(
            [
                float(p.max()),
                float(index.prob(tid, turn_vec)[0]),
                float(cue_hit(t, agent_text)),
                float("?" in agent_text),
                overlap,
                float(dis_probs.max()),
                min(len(segs), 10) / 5.0,
                float(dis_cue),
                max(votes),
            ],
            dtype=np.float64,
        )
    seg_cues = [any(cue_hit(rubric.get(m), s) for m in dis_ids) for s in segs]
    return TurnAnalysis(segs, features, best, seg_vecs, dis_probs, seg_cues)


def score(cal: TechniqueCalibration, x: np.ndarray) -> float:
    z = float(np.dot(cal.weights, x) + cal.bias)
    return float(1.0 / (1.0 + np.exp(-z)))


def load_calibration_for(rubric: Rubric, path: Path = CALIBRATION_PATH) -> Calibration:
    """The fitted weights; a clear error if they are missing or were fitted on another rubric."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing. Run: rapport rubric fit")
    cal = Calibration.load(path)
    if cal.rubric_hash != rubric_hash(rubric):
        warnings.warn(
            f"{path} was fitted on a different version of the rubric's exemplars; "
            "grades still work, but run 'rapport rubric fit' to recalibrate.",
            stacklevel=2,
        )
    missing = set(rubric.technique_ids) - set(cal.techniques)
    if missing:
        raise ValueError(
            f"{path}: techniques {sorted(missing)} have no fitted weights. Run: rapport rubric fit"
        )
    return cal


def calibration_summary(cal: Calibration) -> str:
    return json.dumps({t: round(c.threshold, 3) for t, c in cal.techniques.items()})


_centroids: dict[str, np.ndarray] = {}


def infer_tags(text: str, rubric: Rubric | None = None, min_similarity: float = 0.3) -> list[str]:
    """Guess guidance tags for an untagged chunk (e.g. a company playbook) from the rubric:
    techniques whose positive exemplars' centroid is close, or at least the closest one."""
    from rubric.techniques import load_rubric

    rubric = rubric or load_rubric()
    enc = get_encoder()
    for t in rubric.techniques:
        if t.id not in _centroids:
            c = enc.encode(t.positive).mean(axis=0)
            _centroids[t.id] = c / np.linalg.norm(c)
    v = enc.encode([text])[0]
    sims = {
        tid: float(v @ c)
        for tid, c in _centroids.items()
        if tid in rubric.technique_ids + rubric.marker_ids
    }
    tags = [tid for tid, s in sims.items() if s >= min_similarity]
    return tags or [max(sims, key=lambda k: sims[k])]
