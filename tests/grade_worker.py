"""Run by test_kill_points: grade stored sessions one by one and save each one's feedback,
announcing each step on stdout, until killed."""

from __future__ import annotations

import sys
from pathlib import Path

from common.settings import Settings
from rubric.grader import Grader
from storage import SessionStore


def main(data_dir: str, session_ids: list[str]) -> None:
    settings = Settings(data_dir=Path(data_dir), provider="fake")
    grader = Grader.from_settings(settings)
    store = SessionStore(settings.db_path)
    print("ready", flush=True)
    for sid in session_ids:
        rec = store.get_session(sid)
        print(f"grading {sid}", flush=True)
        graded = grader.grade_transcript(sid, [{"role": t.role, "text": t.text} for t in rec.turns])
        store.save_feedback(sid, graded.model_dump(mode="json"))
        print(f"saved {sid}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
