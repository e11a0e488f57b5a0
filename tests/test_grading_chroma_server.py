"""Grading against a real Chroma server (``chroma run``) over ``HttpClient``.

``Settings.chroma_host`` switches the guidance store and the exemplar index from the data dir's
persistent store to a server; this starts one on 127.0.0.1 and uses it end to end.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.settings import Settings
from rubric.guidance import GUIDANCE_DIR, GuidanceStore
from rubric.techniques import CORE_TECHNIQUES
from tests.conftest import free_port
from tests.servers import stop, wait_until_up

pytestmark = pytest.mark.server

VALIDATING = "It's completely understandable that you're upset after being charged twice"


def _chroma_command() -> list[str]:
    script = Path(sys.executable).with_name("chroma")
    if script.exists():
        return [str(script)]
    # ``python -m chromadb.cli.cli`` has no __main__ guard, so call its entry point directly.
    return [
        sys.executable,
        "-c",
        "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; app()",
    ]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    root = tmp_path_factory.mktemp("chroma-server")
    db = root / "db"
    port = free_port()
    with (root / "server.log").open("wb") as log:  # a file, not a pipe
        args = ["run", "--path", str(db), "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(
            [*_chroma_command(), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(
            proc, f"http://127.0.0.1:{port}/api/v2/heartbeat", root / "server.log", "chroma", 60
        )
        yield port, db
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def server_settings(
    chroma_server: tuple[int, Path], tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    port, _ = chroma_server
    return Settings(
        data_dir=tmp_path_factory.mktemp("server-data"),
        provider="fake",
        chroma_host="127.0.0.1",
        chroma_port=port,
    )


FILES = [
    *sorted(GUIDANCE_DIR.glob("validate-*.md")),
    GUIDANCE_DIR / "cooperate-offer-options.md",
    GUIDANCE_DIR / "listen-open-questions.md",
    GUIDANCE_DIR / "affirm-read-back.md",
]


def test_guidance_store_ingests_and_searches_over_http(
    server_settings: Settings, chroma_server: tuple[int, Path]
) -> None:
    _, db = chroma_server
    store = GuidanceStore(server_settings)
    assert type(store.client).__name__ != "PersistentClient"
    report = store.ingest(FILES)
    assert set(report.added) == {f"guidance/{f.name}" for f in FILES}
    assert store.count() == report.chunks_written > 0
    assert not (server_settings.data_dir / "chroma").exists()  # nothing local
    assert db.exists() and any(db.iterdir())  # the server persisted it

    top = store.search(VALIDATING, k=3)
    assert sum("validate" in p.tags for p in top) >= 2, [(p.id, p.tags) for p in top]
    coop = store.search(VALIDATING, tag="cooperate", k=2)
    assert coop and all("cooperate" in p.tags for p in coop)
    assert store.get_passage("cooperate-offer-options") is not None

    # a second client sees the same collection; re-ingest adds nothing
    other = GuidanceStore(server_settings)
    assert other.count() == store.count()
    again = other.ingest(FILES)
    assert sorted(again.unchanged) == sorted(report.added) and again.chunks_written == 0


def test_grader_from_settings_works_over_http(server_settings: Settings) -> None:
    from rubric.grader import Grader

    grader = Grader.from_settings(server_settings)
    names = {c if isinstance(c, str) else c.name for c in grader.guidance.client.list_collections()}
    assert f"rapport_exemplars_{grader.index.hash}" in names
    graded = grader.grade_transcript(
        "http",
        [
            {"role": "customer", "text": "I've been charged twice for my phone contract."},
            {
                "role": "agent",
                "text": "Being charged twice is really stressful, I'm sorry. Which dates did "
                "the two payments come out?",
            },
        ],
    )
    (turn,) = graded.turns
    assert set(turn.techniques) == set(CORE_TECHNIQUES)
    assert turn.techniques["listen"].used is True
    cited = {pid for v in turn.techniques.values() for pid in v.guidance_ids}
    assert cited and cited <= {f.stem for f in FILES}
    # building again reuses the server's exemplar collection instead of re-embedding
    t0 = time.monotonic()
    Grader.from_settings(server_settings)
    assert time.monotonic() - t0 < 5
