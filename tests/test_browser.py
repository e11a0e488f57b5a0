"""The app as a trainee uses it: served for real, driven in headless Debian chromium."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from sim.persona import load_personas
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
    # pick a persona other than the default: picking shows her opening line, no button needed
    page.locator("#persona-picker input").click()
    page.get_by_role("option", name="Helen Marsh").click()
    page.locator("#persona-card").get_by_text("Halcyon Cloud").wait_for()
    # one element per customer message (".bot" matches a second, nested one in each)
    bot = page.locator("#chat .message-row.bot-row")
    bots = "document.querySelectorAll('#chat .message-row.bot-row').length"
    page.wait_for_function(
        "() => (document.querySelector('#chat .message-row.bot-row') || {}).innerText"
        "?.includes('Douglas Marsh')"
    )
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
    # the page opened with the first customer's opening line; nothing was written there
    opened = [r for r in rows if r[3] != "grieving_cloud_photos"]
    assert all(r[1:] == (None, "open", r[3], 0, 1) for r in opened) and len(opened) <= 1
    rows = [r for r in rows if r[3] == "grieving_cloud_photos"]
    assert len(rows) == 2
    first, retried = rows
    assert first[1:] == (None, "ended", "grieving_cloud_photos", 1, 3)
    assert retried[1:] == (first[0], "open", "grieving_cloud_photos", 0, 3)


# --- the first minute, on the fake model: no button to find before the first reply ----------
FIRST_REPLY = "It was a transfer to my brother in Lagos, and it still says processing."
PERSONAS = load_personas()


@pytest.fixture(scope="module")
def fake_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``rapport serve`` with the fake provider (no model needed) and a fresh data dir."""
    data = tmp_path_factory.mktemp("firstminute")
    script = data / "script.json"
    script.write_text(json.dumps([FIRST_REPLY] * 40))  # room for regenerations
    env = {
        **os.environ,
        "RAPPORT_DATA_DIR": str(data),
        "RAPPORT_PROVIDER": "fake",
        "RAPPORT_FAKE_SCRIPT": str(script),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    with rapport_app(env, data / "app.log") as url:
        yield url, data


def _chat(page: Any) -> list[tuple[str, str]]:
    """The conversation on the page: (``user`` or ``bot``, text) per message."""
    rows: list[list[str]] = page.eval_on_selector_all(
        "#chat .message-row",
        "els => els.map(e => [e.classList.contains('user-row') ? 'user' : 'bot', e.innerText])",
    )
    return [(who, text.strip()) for who, text in rows]


def _agent_sessions(data: Path) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Every stored session the trainee wrote in: id, persona and (role, text) turns."""
    with closing(sqlite3.connect(data / "rapport.sqlite3")) as con:
        ids = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT session_id FROM turns WHERE role = 'agent' ORDER BY session_id"
            )
        ]
        out = []
        for sid in ids:
            (pid,) = con.execute("SELECT persona_id FROM sessions WHERE id = ?", (sid,)).fetchone()
            turns = con.execute(
                "SELECT role, text FROM turns WHERE session_id = ? ORDER BY idx", (sid,)
            ).fetchall()
            out.append((sid, pid, [(r, t) for r, t in turns]))
    return out


def test_a_new_user_types_first_and_gets_a_reply(fake_app: tuple[str, Path], browser: Any) -> None:
    url, data = fake_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(url)
    # a fresh page, the customer already selected: type at once and press Enter
    typed = "I'm so sorry, that sounds worrying. Can you tell me who you sent it to?"
    page.locator("#message textarea").fill(typed)
    page.locator("#message textarea").press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('#chat .message-row.bot-row').length >= 2"
        " && !document.querySelector('#status').innerText.includes('typing')"
    )
    aisha = PERSONAS["anxious_international_transfer"]
    assert aisha.name in page.locator("#persona-card").inner_text()
    assert _chat(page) == [("bot", aisha.opening_line), ("user", typed), ("bot", FIRST_REPLY)]
    assert page.locator("#message textarea").input_value() == ""
    status = page.locator("#status").inner_text()
    assert "New session" not in status and "Pick a customer" not in status
    # stored: one session, the opening line, the trainee's words and the reply
    ((sid, pid, turns),) = _agent_sessions(data)
    assert pid == aisha.id
    assert turns == [
        ("customer", aisha.opening_line),
        ("agent", typed),
        ("customer", FIRST_REPLY),
    ]
    # the next message goes on in the same session
    page.locator("#message textarea").fill("Thank you. When did you send it?")
    page.locator("#message textarea").press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('#chat .message-row.bot-row').length >= 3"
        " && !document.querySelector('#status').innerText.includes('typing')"
    )
    ((sid2, _, turns),) = _agent_sessions(data)
    assert sid2 == sid
    assert [r for r, _ in turns] == ["customer", "agent", "customer", "agent", "customer"]
    # changing customer now leaves this conversation alone, and says how to start another
    page.locator("#persona-picker input").click()
    page.get_by_role("option", name="Gareth Pryce").click()
    page.locator("#status").get_by_text("New session").wait_for()
    assert len(_chat(page)) == 5
    page.close()


def test_a_fresh_page_opens_with_the_customer_speaking(
    fake_app: tuple[str, Path], browser: Any
) -> None:
    url, _data = fake_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(url)
    aisha = PERSONAS["anxious_international_transfer"]
    page.locator("#chat .message-row.bot-row").first.wait_for()
    assert _chat(page) == [("bot", aisha.opening_line)]
    # picking another customer before writing: their opening line, in a session of its own
    gareth = PERSONAS["irate_broadband_outage"]
    page.locator("#persona-picker input").click()
    page.get_by_role("option", name=gareth.name).click()
    page.wait_for_function(
        "(line) => (document.querySelector('#chat .message-row.bot-row') || {})"
        ".innerText?.trim() === line",
        arg=gareth.opening_line,
    )
    assert _chat(page) == [("bot", gareth.opening_line)]
    page.locator("#message textarea").fill("I'm sorry you're without internet. Since when?")
    page.locator("#message textarea").press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('#chat .message-row.bot-row').length >= 2"
        " && !document.querySelector('#status').innerText.includes('typing')"
    )
    assert [who for who, _ in _chat(page)] == ["bot", "user", "bot"]
    page.close()
