"""Grading, ingest and retrieval speed of the default (turn model) path.

    python -m bench.grading [--runs 5] [--files 50] [--chunks-per-file 10] [--queries 200]

1. Grade a 10-agent-turn transcript (20 turns) with ``Grader.from_settings`` over a store
   holding the shipped guidance: median of N runs after one warm-up, and per agent turn.
   Baseline, same run: the encoders alone (the turn model's forward passes on the same
   pairs, plus the MiniLM vectors that pick the cited guidance).
   The per-turn verdict the director waits for (``classify_turn`` on one agent turn, caches
   cleared): p95 over every agent turn of every run, against the encoders alone per turn.
2. Ingest ~500 chunks of synthetic playbook markdown (front matter with tags) into a fresh
   ``GuidanceStore``. Baseline: encoding the same chunk texts alone.
3. Retrieval: ``store.search(text, tag=..., k=3)`` for N queries, p50/p95. Baseline: the
   same queries with precomputed vectors (Chroma alone).

Targets (issues): 10-turn grade <= 2 s on 2 cores; per-turn verdict p95 <= 200 ms;
500-chunk ingest <= 10 s; retrieval p50 <= 10 ms. Nothing is asserted; figures go to ``bench/results/grading.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import (
    Figure,
    Stopwatch,
    figure,
    figures_table,
    loadavg,
    machine_info,
    median,
    now_iso,
    percentile,
    targets_of,
    write_results,
)
from bench.grading_data import QUERIES, grading_turns, write_playbook

if TYPE_CHECKING:
    from rubric.grader import Grader
    from rubric.guidance import GuidanceStore

NAME = "grading"
GRADE_TARGET_S = 2.0
TURN_P95_TARGET_MS = 200.0
INGEST_TARGET_S = 10.0
RETRIEVAL_P50_TARGET_MS = 10.0


def make_grader(data_dir: Path) -> tuple[Grader, dict[str, float | int]]:
    """Ingest the shipped guidance into a fresh data dir, then build the grader on it."""
    from common.settings import Settings
    from rubric.embeddings import get_encoder
    from rubric.grader import Grader
    from rubric.guidance import GUIDANCE_DIR, GuidanceStore

    settings = Settings(data_dir=data_dir)
    with Stopwatch() as enc_sw:
        get_encoder()
    with Stopwatch() as ing_sw:
        rep = GuidanceStore(settings).ingest([GUIDANCE_DIR])
    with Stopwatch() as build_sw:
        grader = Grader.from_settings(settings)
    return grader, {
        "encoder_load_s": enc_sw.seconds,
        "ingest_shipped_s": ing_sw.seconds,
        "shipped_chunks": rep.chunks_written,
        "grader_build_s": build_sw.seconds,
    }


def _agent_turns(turns: Sequence[dict[str, str]]) -> list[tuple[str, str]]:
    """(agent text, the customer's words before it) for every agent turn."""
    out = []
    for i, t in enumerate(turns):
        if t["role"] == "agent":
            customer = next((p["text"] for p in reversed(turns[:i]) if p["role"] == "customer"), "")
            out.append((t["text"], customer))
    return out


def encode_turn(grader: Grader | None, agent: str, customer: str) -> None:
    """What the encoders alone compute for one agent turn on the grader's path."""
    from rubric.classifier import segments
    from rubric.embeddings import get_encoder

    segs = segments(agent)
    model = grader.turn_model if grader is not None else None
    if model is not None:
        pairs = [(customer, agent)] + ([(customer, s) for s in segs] if len(segs) > 1 else [])
        model.predict(pairs)
        get_encoder().encode(segs)
        return
    get_encoder().encode([*segs, agent])
    if customer.strip():
        get_encoder().encode(segments(customer))


def embed_only(turns: Sequence[dict[str, str]], grader: Grader | None = None) -> None:
    for agent, customer in _agent_turns(turns):
        encode_turn(grader, agent, customer)


def _clear_encoders(grader: Grader) -> None:
    from rubric.embeddings import get_encoder

    get_encoder().cache_clear()
    if grader.turn_model is not None:
        grader.turn_model.cache_clear()


def per_turn_verdicts(grader: Grader, turns: Sequence[dict[str, str]], runs: int) -> dict[str, Any]:
    """p50/p95 of one cold ``classify_turn`` (what the director waits for) against the
    encoders alone on the same turn, interleaved so both see the same machine."""
    verdict_ms: list[float] = []
    encode_ms: list[float] = []
    pairs = _agent_turns(turns)
    grader.classify_turn(*pairs[0])  # warm-up
    for _ in range(runs):
        for agent, customer in pairs:
            grader.clear_caches()
            t0 = time.perf_counter()
            grader.classify_turn(agent, customer)
            verdict_ms.append((time.perf_counter() - t0) * 1000)
            _clear_encoders(grader)
            t0 = time.perf_counter()
            encode_turn(grader, agent, customer)
            encode_ms.append((time.perf_counter() - t0) * 1000)
    return {
        "samples": len(verdict_ms),
        "verdict_p50_ms": percentile(verdict_ms, 50),
        "verdict_p95_ms": percentile(verdict_ms, 95),
        "encode_p50_ms": percentile(encode_ms, 50),
        "encode_p95_ms": percentile(encode_ms, 95),
    }


def timed_runs(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def grading_breakdown(grader: Grader, turns: Sequence[dict[str, str]]) -> dict[str, Any]:
    """One extra, instrumented grade: where the time goes. Wraps methods on the instances
    (encoder, exemplar index, grader) and removes the wrappers afterwards."""
    from rubric.embeddings import get_encoder

    spent: dict[str, float] = {}
    calls: dict[str, int] = {}
    targets: list[tuple[object, str, str]] = [
        (get_encoder(), "encode", "minilm_encode"),
        (grader.index, "nearest", "chroma_knn_query"),
        (grader.index, "prob", "logistic_predict"),
        (grader, "_cite", "chroma_guidance_query"),
    ]
    if grader.turn_model is not None:
        targets.append((grader.turn_model, "predict", "turn_model_predict"))

    def wrap(label: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def inner(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t0
                calls[label] = calls.get(label, 0) + 1

        return inner

    for obj, attr, label in targets:
        setattr(obj, attr, wrap(label, getattr(obj, attr)))
    try:
        grader.clear_caches()
        t0 = time.perf_counter()
        grader.grade_transcript("bench-breakdown", turns)
        total = time.perf_counter() - t0
    finally:
        for obj, attr, _ in targets:
            obj.__dict__.pop(attr, None)
    parts = {k: round(v, 4) for k, v in spent.items()}
    parts["other"] = round(total - sum(spent.values()), 4)
    return {"total_s": total, "seconds": parts, "calls": calls}


def bench_grading(grader: Grader, runs: int) -> dict[str, Any]:
    turns = grading_turns()
    agent_turns = sum(1 for t in turns if t["role"] == "agent")

    def cold_grade() -> object:
        grader.clear_caches()  # time real work, not the text/k-NN caches
        return grader.grade_transcript("bench", turns)

    def cold_embed() -> None:
        _clear_encoders(grader)
        embed_only(turns, grader)

    grade_times = timed_runs(cold_grade, runs)
    embed_times = timed_runs(cold_embed, runs)
    g, e = median(grade_times), median(embed_times)
    graded = grader.grade_transcript("bench", turns)
    return {
        "turns": len(turns),
        "agent_turns": agent_turns,
        "runs": runs,
        "grade_s": grade_times,
        "embed_s": embed_times,
        "grade_median_s": g,
        "embed_median_s": e,
        "grade_per_agent_turn_s": g / agent_turns,
        "embed_per_agent_turn_s": e / agent_turns,
        "breakdown": grading_breakdown(grader, turns),
        "per_turn": per_turn_verdicts(grader, turns, runs),
        "path": "turn_model" if grader.turn_model is not None else "exemplar",
        "summary": graded.summary.model_dump(),
    }


def bench_ingest(
    root: Path, files: int, chunks_per_file: int
) -> tuple[GuidanceStore, dict[str, Any]]:
    from common.settings import Settings
    from rubric.embeddings import get_encoder
    from rubric.guidance import GuidanceStore

    store = GuidanceStore(Settings(data_dir=root / "ingest-data"))
    chunk_lists = write_playbook(root / "playbook", store, files, chunks_per_file)
    n_chunks = sum(len(c) for c in chunk_lists)
    with Stopwatch() as sw:
        rep = store.ingest([root / "playbook"], root=root)
    # Baseline: the same texts through the encoder alone, one call per file as
    # langchain-chroma's add_documents makes it (so batching and padding match).
    enc = get_encoder()
    with Stopwatch() as enc_sw:
        for c in chunk_lists:
            enc.encode(c, use_cache=False)
    return store, {
        "files": files,
        "chunks": n_chunks,
        "chunks_written": rep.chunks_written,
        "skipped": rep.skipped,
        "ingest_s": sw.seconds,
        "chunks_per_s": rep.chunks_written / sw.seconds if sw.seconds > 0 else None,
        "embed_only_s": enc_sw.seconds,
        "avg_chunk_chars": sum(len(x) for c in chunk_lists for x in c) / max(n_chunks, 1),
    }


def bench_retrieval(store: GuidanceStore, queries: int) -> dict[str, Any]:
    from rubric.embeddings import get_encoder
    from rubric.guidance import TAGS

    texts = [QUERIES[i % len(QUERIES)] for i in range(queries)]
    tags = [TAGS[i % len(TAGS)] for i in range(queries)]
    for i in range(5):  # warm-up
        store.search(texts[i], tag=tags[i], k=3)
    text_ms: list[float] = []
    hits = 0
    for q, tag in zip(texts, tags, strict=True):
        t0 = time.perf_counter()
        got = store.search(q, tag=tag, k=3)
        text_ms.append((time.perf_counter() - t0) * 1000)
        hits += len(got)
    vecs: list[list[float]] = get_encoder().encode(texts).tolist()
    vec_ms: list[float] = []
    for v, tag in zip(vecs, tags, strict=True):
        t0 = time.perf_counter()
        store.search(v, tag=tag, k=3)
        vec_ms.append((time.perf_counter() - t0) * 1000)
    return {
        "queries": queries,
        "store_chunks": store.count(),
        "k": 3,
        "results_returned": hits,
        "text_p50_ms": percentile(text_ms, 50),
        "text_p95_ms": percentile(text_ms, 95),
        "vector_p50_ms": percentile(vec_ms, 50),
        "vector_p95_ms": percentile(vec_ms, 95),
    }


def run(
    runs: int = 5, files: int = 50, chunks_per_file: int = 10, queries: int = 200
) -> dict[str, Any]:
    started = time.perf_counter()
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        root = Path(tmp)
        grader, setup = make_grader(root / "grading-data")
        grading = bench_grading(grader, runs)
        store, ingest = bench_ingest(root, files, chunks_per_file)
        retrieval = bench_retrieval(store, queries)

    g, i, r = grading, ingest, retrieval
    n_agent = g["agent_turns"]
    figs: list[Figure] = [
        figure(
            f"grade {n_agent}-agent-turn transcript (median of {runs})",
            g["grade_median_s"],
            "s",
            baseline=g["embed_median_s"],
            baseline_name="the encoders alone on the same turns",
            target=GRADE_TARGET_S,
        ),
        figure(
            "per-turn verdict p95 (what the director waits for)",
            g["per_turn"]["verdict_p95_ms"],
            "ms",
            baseline=g["per_turn"]["encode_p95_ms"],
            baseline_name="the encoders alone per turn, p95",
            target=TURN_P95_TARGET_MS,
        ),
        figure(
            "grade per agent turn",
            g["grade_per_agent_turn_s"] * 1000,
            "ms",
            baseline=g["embed_per_agent_turn_s"] * 1000,
            baseline_name="the encoders per agent turn",
        ),
        figure(
            f"ingest {i['chunks_written']} chunks ({files} files)",
            i["ingest_s"],
            "s",
            baseline=i["embed_only_s"],
            baseline_name="MiniLM encoding of the same chunks alone",
            target=INGEST_TARGET_S * i["chunks_written"] / 500 if i["chunks_written"] else None,
            note="target scaled from 10 s per 500 chunks",
        ),
        figure(
            "ingest throughput",
            i["chunks_per_s"],
            "chunks/s",
            baseline=i["chunks_written"] / i["embed_only_s"] if i["embed_only_s"] else None,
            baseline_name="encoding-only throughput",
        ),
        figure(
            f"retrieval p50, text query ({r['store_chunks']} chunks)",
            r["text_p50_ms"],
            "ms",
            baseline=r["vector_p50_ms"],
            baseline_name="same queries with precomputed vectors",
            target=RETRIEVAL_P50_TARGET_MS,
        ),
        figure(
            "retrieval p95, text query",
            r["text_p95_ms"],
            "ms",
            baseline=r["vector_p95_ms"],
            baseline_name="precomputed vectors p95",
        ),
        figure(
            "retrieval p50, precomputed vector",
            r["vector_p50_ms"],
            "ms",
            target=RETRIEVAL_P50_TARGET_MS,
        ),
    ]
    return {
        "bench": NAME,
        "timestamp": now_iso(),
        "machine": machine_info() | {"loadavg_start": load_start, "loadavg_end": loadavg()},
        "nproc": machine_info()["nproc"],
        "config": {
            "runs": runs,
            "files": files,
            "chunks_per_file": chunks_per_file,
            "queries": queries,
        },
        "setup": setup,
        "grading": grading,
        "ingest": ingest,
        "retrieval": retrieval,
        "figures": figs,
        "targets": targets_of(figs),
        "wall_s": time.perf_counter() - started,
    }


def report(res: dict[str, Any]) -> str:
    s, g = res["setup"], res["grading"]
    b = g["breakdown"]
    parts = ", ".join(f"{k} {v:.3f}s" for k, v in b["seconds"].items())
    calls = ", ".join(f"{k} x{v}" for k, v in b["calls"].items())
    return "\n".join(
        [
            f"grading  nproc={res['nproc']}  loadavg={res['machine']['loadavg_start']}"
            f"->{res['machine']['loadavg_end']}",
            f"setup: encoder {s['encoder_load_s']:.2f}s, shipped guidance ingest "
            f"{s['ingest_shipped_s']:.2f}s ({s['shipped_chunks']} chunks), grader build "
            f"{s['grader_build_s']:.2f}s",
            "grade runs (s): " + ", ".join(f"{x:.3f}" for x in g["grade_s"]),
            f"one grade, instrumented ({b['total_s']:.3f}s): {parts}",
            f"calls: {calls}",
            "",
            figures_table(res["figures"]),
            f"\nwall {res['wall_s']:.1f} s",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.grading",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--runs", type=int, default=5, help="timed grading runs (median reported)")
    ap.add_argument("--files", type=int, default=50, help="synthetic playbook files")
    ap.add_argument("--chunks-per-file", type=int, default=10)
    ap.add_argument("--queries", type=int, default=200, help="retrieval queries")
    a = ap.parse_args(argv)
    res = run(runs=a.runs, files=a.files, chunks_per_file=a.chunks_per_file, queries=a.queries)
    path = write_results(NAME, res)
    print(report(res))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
