"""The ``openai`` provider against a real OpenAI-compatible server (llama-cpp-python's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.settings import Settings
from common.turns import Turn
from providers.registry import ProviderError, get_chat_model
from sim.persona import load_personas
from sim.simulator import CustomerTurn
from tests.servers import llama_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def tiny_server(smollm2_path: Path) -> Iterator[str]:
    with llama_server(smollm2_path) as base:
        yield base


def test_streams_a_customer_reply_through_chatopenai(tiny_server: str, tmp_path: Path) -> None:
    settings = Settings(
        provider="openai", base_url=tiny_server, model="tiny", max_tokens=32, data_dir=tmp_path
    )
    model = get_chat_model(settings)
    assert type(model).__name__ == "ChatOpenAI"
    p = load_personas()["confused_energy_bill"]
    turn = CustomerTurn(
        model, p, [Turn("customer", p.opening_line), Turn("agent", "What does the bill say?")]
    )
    partials = list(turn)
    assert turn.reply is not None and turn.reply.text.strip()
    assert len(partials) > 1  # streamed, not one blob


def test_openai_provider_needs_an_endpoint_or_key(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="RAPPORT_BASE_URL"):
        get_chat_model(Settings(provider="openai", data_dir=tmp_path))
