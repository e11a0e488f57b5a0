"""Script injection through the chat: customer replies and trainee messages carrying HTML
and script payloads must never run in the trainee's browser, in the chat or in the
feedback card that quotes the trainee's words. Served for real, driven in headless chromium
(the fake provider plays the customer, so no model is needed)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.servers import rapport_app

pytestmark = [pytest.mark.browser, pytest.mark.server]

CUSTOMER_XSS = (
    'I saw <img src=x onerror="window.__xss=1"> on the bill and '
    "<script>window.__xss=2</script> next to it. What is that?"
)
AGENT_XSS = (
    "I'm sorry, that sounds confusing. Is it <script>window.__xss=3</script> or "
    '<img src=x onerror="window.__xss=4"> that you can see?'
)
BOT = "#chat .message-row.bot-row, #chat .bot"
# the ways a page could run an injected payload
INJECTED = "img[onerror], [onerror], [onload], script:not([src])"


@pytest.fixture(scope="module")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``rapport serve`` on a free port with the fake provider and a fresh data dir."""
    data = tmp_path_factory.mktemp("xssdata")
    script = data / "script.json"
    script.write_text(json.dumps([CUSTOMER_XSS] * 6))  # room for regenerations
    env = {
        **os.environ,
        "RAPPORT_DATA_DIR": str(data),
        "RAPPORT_PROVIDER": "fake",
        "RAPPORT_FAKE_SCRIPT": str(script),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    with rapport_app(env, data / "app.log") as url:
        yield url, data


def _injected(page: Any, selector: str) -> list[str]:
    """Outer HTML of every element under ``selector`` that could run script."""
    found: list[str] = page.eval_on_selector_all(
        f"{selector} :is({INJECTED})", "els => els.map(e => e.outerHTML)"
    )
    return found


@pytest.fixture(scope="module")
def chatted(served_app: tuple[str, Path], browser: Any) -> Iterator[tuple[Any, list[str], Path]]:
    """A page where the trainee sent ``AGENT_XSS`` and the customer answered ``CUSTOMER_XSS``."""
    url, data = served_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:  # an alert() from a payload would land here
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url)
    page.locator("#new-session").click()
    page.locator(BOT).first.wait_for()
    page.locator("#message textarea").fill(AGENT_XSS)
    page.locator("#message textarea").press("Enter")
    page.wait_for_function(f"() => document.querySelectorAll('{BOT}').length >= 2")
    page.wait_for_function("() => !document.querySelector('#status').innerText.includes('typing')")
    page.wait_for_timeout(1000)  # give an injected handler (an image error) time to fire
    yield page, dialogs, data
    page.close()


def test_chat_payloads_do_not_run(chatted: tuple[Any, list[str], Path]) -> None:
    page, dialogs, data = chatted
    assert page.evaluate("() => window.__xss") is None
    assert dialogs == []
    assert _injected(page, "#chat") == []
    assert page.locator("script", has_text="__xss").count() == 0
    # what was stored is the exact text, for the record and for grading
    with closing(sqlite3.connect(data / "rapport.sqlite3")) as db:
        texts = {r[0] for r in db.execute("SELECT text FROM turns")}
    assert {AGENT_XSS, CUSTOMER_XSS} <= texts


def test_chat_payloads_are_shown_as_the_typed_text(chatted: tuple[Any, list[str], Path]) -> None:
    page, _, _ = chatted
    assert page.locator('#chat img[src="x"]').count() == 0
    chat_text = page.locator("#chat").inner_text()
    for payload in (AGENT_XSS, CUSTOMER_XSS):
        assert payload in chat_text


def test_feedback_card_quotes_payloads_as_text(chatted: tuple[Any, list[str], Path]) -> None:
    page, dialogs, _ = chatted
    page.locator("#end-session").click()
    card = page.locator("#feedback-card")
    card.wait_for()
    page.wait_for_timeout(1000)
    assert page.evaluate("() => window.__xss") is None
    assert dialogs == []
    for where in ("#feedback", "#emotion-trace-text", "#status", "#retry-turn"):
        assert _injected(page, where) == [], where
    assert page.locator('#feedback img[src="x"]').count() == 0
    # the card quotes the trainee's turn escaped: the payload is there, as text only
    assert "<script>window.__xss=3</script>" in card.inner_text()
    assert "&lt;script&gt;window.__xss=3&lt;/script&gt;" in card.inner_html()
    assert page.locator("script", has_text="__xss").count() == 0
