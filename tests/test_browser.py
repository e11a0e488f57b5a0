"""The app as a trainee uses it: served for real, driven in headless Debian chromium."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.servers import rapport_app

pytestmark = pytest.mark.browser
SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def served_app(
    tmp_path_factory: pytest.TempPathFactory, default_model_path: Path
) -> Iterator[tuple[str, Path]]:
    """``rapport serve`` on a free port with the real embedded model and a fresh data dir."""
    data = tmp_path_factory.mktemp("appdata")
    env = {
        **os.environ,
        "RAPPORT_DATA_DIR": str(data),
        "RAPPORT_MODEL_PATH": str(default_model_path),
        "RAPPORT_PROVIDER": "local",
        "RAPPORT_MAX_TOKENS": "60",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    with rapport_app(env, data / "app.log") as url:
        yield url, data


def test_practice_session_end_to_end(served_app: tuple[str, Path], browser: object) -> None:
    url, data = served_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page.set_default_timeout(300_000)  # first reply reads the whole persona prompt
    page.goto(url)
    # pick a persona other than the default
    page.locator("#persona-picker input").click()
    page.get_by_role("option", name="Helen Marsh").click()
    page.locator("#persona-card").get_by_text("Halcyon Cloud").wait_for()
    page.locator("#new-session").click()
    # one element per customer message (".bot" matches a second, nested one in each)
    bot = page.locator("#chat .message-row.bot-row")
    bots = "document.querySelectorAll('#chat .message-row.bot-row').length"
    bot.first.wait_for()
    opening = bot.first.inner_text()
    assert "father" in opening.lower() or "dad" in opening.lower()
    mood = page.locator("#mood-meter .rp-mood")
    baseline = float(mood.get_attribute("data-mood") or "nan")
    assert 0 < baseline <= 10
    page.locator("#message textarea").fill(
        "I'm so sorry about your father. That must be painful. Could you tell me what happened with the renewal?"
    )
    page.locator("#message textarea").press("Enter")
    page.wait_for_function(f"() => {bots} >= 2")
    # wait for streaming to finish: the status line clears
    page.wait_for_function("() => !document.querySelector('#status').innerText.includes('typing')")
    reply = bot.nth(1).inner_text().strip()
    assert reply and reply != "…"
    # validating and listening calmed her: the meter says so, with what did it
    assert float(mood.get_attribute("data-mood") or "nan") < baseline
    assert "↓" in page.locator("#mood-meter .rp-trend").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "practice.png"))

    page.locator("#end-session").click()
    card = page.locator("#feedback-card")
    card.wait_for()
    assert card.locator(".rp-chip").count() == 4
    assert card.locator(".rp-quote").count() >= 1  # the trainee's own words quoted
    assert card.locator("details.rp-cite").count() >= 1  # a guidance citation
    card.locator("details.rp-cite summary").first.click()
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "feedback.png"), full_page=True)

    # the emotion trace: gr.Plot renders a matplotlib figure as an <img>
    page.locator("#emotion-trace img").wait_for()
    assert "fell" in page.locator("#emotion-trace-text").inner_text()
    page.locator("#emotion-trace").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(SCREENSHOTS / "trace.png"))

    # retry from the first message: a new session holding only the opening line
    page.locator("#retry-turn input").click()
    page.get_by_role("option", name=re.compile(r"^#1: ")).click()
    page.locator("#retry").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Rewound')")
    page.wait_for_function(f"() => {bots} === 1")
    assert float(mood.get_attribute("data-mood") or "nan") == baseline
    page.locator("#message textarea").fill(
        "I'm really sorry. What happened when you tried to log in?"
    )
    page.locator("#message textarea").press("Enter")
    page.wait_for_function(f"() => {bots} >= 2")
    page.wait_for_function("() => !document.querySelector('#status').innerText.includes('typing')")

    with sqlite3.connect(data / "rapport.sqlite3") as con:
        rows = con.execute(
            "SELECT s.id, s.parent_id, s.status, s.persona_id, s.feedback_json IS NOT NULL,"
            " COUNT(t.idx) FROM sessions s JOIN turns t ON t.session_id = s.id"
            " GROUP BY s.id ORDER BY s.started_at"
        ).fetchall()
    assert len(rows) == 2
    first, retried = rows
    assert first[1:] == (None, "ended", "grieving_cloud_photos", 1, 3)
    assert retried[1:] == (first[0], "open", "grieving_cloud_photos", 0, 3)
