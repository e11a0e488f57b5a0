"""``bench.run_all --merge``: benches not rerun keep their earlier figures, marked as kept."""

from __future__ import annotations

from bench.run_all import merge_earlier


def test_merge_keeps_what_was_not_rerun_and_marks_it() -> None:
    now = {"results": {"load": {"timestamp": "new", "figures": [1]}}, "errors": {"grading": "x"}}
    earlier = {
        "timestamp": "old-run",
        "results": {
            "load": {"timestamp": "old", "figures": [0]},
            "grading": {"timestamp": "old-g", "figures": [2]},
            "chat_latency": {"figures": [3]},
        },
    }
    out = merge_earlier(now, earlier)
    assert out["results"]["load"]["timestamp"] == "new"  # rerun: the new figures win
    assert "grading" not in out["results"]  # failed now: not papered over with old figures
    assert out["results"]["chat_latency"] == {"figures": [3]}
    assert out["kept"] == {"chat_latency": "old-run"}
