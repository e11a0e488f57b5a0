"""Disputes in a real browser: a trainee disputes a verdict from the feedback card, a trainer
rules on it in the review queue, and the trainee sees the ruling with the session. Served
with sign-in on and the scripted fake model; screenshots for the README."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.servers import add_users, field, rapport_app, sign_in

pytestmark = pytest.mark.browser
SCREENSHOTS = ROOT / "docs" / "screenshots"
USERS = {"tess": ("trainer", "tess-trainer-pw"), "alice": ("trainee", "alice-trainee-pw")}
REPLY = "Okay. I just want to know what is going on with it, honestly."
REASON = "I said sorry and named how stressful it was."
NOTE = "Agreed: naming the stress counts."
BOTS = "document.querySelectorAll('#chat .message-row.bot-row').length"


@dataclass
class Served:
    url: str
    data: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("disputes")
    data = root / "data"
    script = root / "script.json"
    script.write_text(json.dumps([REPLY] * 100))
    env = {
        **os.environ,
        "RAPPORT_DATA_DIR": str(data),
        "RAPPORT_PROVIDER": "fake",
        "RAPPORT_FAKE_SCRIPT": str(script),
        "RAPPORT_AUTH": "on",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    add_users(env, USERS)
    with rapport_app(env, root / "app.log") as url:
        yield Served(url, data)


def login(browser: Any, url: str, name: str) -> Any:
    return sign_in(browser, url, name, USERS[name][1])


def choose(page: Any, elem_id: str, option: str | re.Pattern[str]) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).first.click()


def test_a_trainee_disputes_a_trainer_rules_and_the_trainee_sees_it(
    served: Served, browser: Any
) -> None:
    # --- the trainee practises, ends the session and disputes one verdict --------------------
    alice = login(browser, served.url, "alice")
    assert alice.get_by_role("tab", name="Disputes").count() == 0  # trainers only
    alice.wait_for_function(f"() => {BOTS} === 1")  # the opening line, in a live session
    field(alice, "message").fill("I'm so sorry, that sounds really stressful. What happened?")
    field(alice, "message").press("Enter")
    alice.wait_for_function(f"() => {BOTS} === 2")
    alice.wait_for_function("() => !document.querySelector('#status').innerText.includes('typing')")
    alice.locator("#end-session").click()
    alice.locator("#feedback-card").wait_for(timeout=120_000)
    box = alice.locator("#dispute-box")
    box.wait_for()
    box.get_by_text("Disagree with a verdict?").click()
    alice.locator("#dispute-verdict input").click()
    options = alice.get_by_role("option")
    options.first.wait_for()
    picked = str(options.first.inner_text())
    assert re.match(r"Turn 1 · \w+ · the grader said (used|not used) \(\d+% sure\)", picked)
    options.first.click()
    field(alice, "dispute-reason").fill(REASON)
    alice.locator("#dispute-submit").click()
    alice.locator("#dispute-status").get_by_text("A trainer will rule on it").wait_for()
    listing = alice.locator("#session-disputes")
    listing.get_by_text("Waiting for a trainer's ruling.").wait_for()
    assert REASON in listing.inner_text()
    technique = picked.split(" · ")[1]
    box.evaluate("e => e.scrollIntoView({block: 'center'})")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(SCREENSHOTS / "dispute.png"))

    # --- the trainer finds it in the queue, reads it in context and overturns it --------------
    tess = login(browser, served.url, "tess")
    tess.get_by_role("tab", name="Disputes").click()
    tess.wait_for_function(
        "() => document.querySelector('#queue-table').innerText.includes('alice')"
    )
    choose(tess, "queue-technique", technique)
    tess.wait_for_function(
        "() => document.querySelector('#queue-table').innerText.includes('alice')"
    )
    choose(tess, "queue-pick", re.compile(r"#\d+ · alice"))
    detail = tess.locator("#dispute-review")
    detail.wait_for()
    text = detail.inner_text()
    assert REASON in text and "sounds really stressful" in text  # the turn, in context
    assert "Customer:" in text and "Grader:" in text
    tess.get_by_label("Overturn the grader").check()
    field(tess, "queue-note").fill(NOTE)
    tess.locator("#queue-table").evaluate("e => e.scrollIntoView({block: 'start'})")
    tess.screenshot(path=str(SCREENSHOTS / "review.png"))
    tess.locator("#queue-rule").click()
    tess.locator("#queue-rule-status").get_by_text("Overturned by tess").wait_for()
    # ruled: it leaves the open queue
    tess.wait_for_function(
        "() => !document.querySelector('#queue-table').innerText.includes('alice')"
    )

    # --- the trainee sees the ruling with the session in History -----------------------------
    alice.get_by_role("tab", name="History").click()
    alice.locator("#history-session input").click()
    alice.get_by_role("option").first.click()
    rulings = alice.locator("#replay-disputes")
    rulings.get_by_text("Overturned by tess").wait_for()
    assert NOTE in rulings.inner_text() and REASON in rulings.inner_text()
    assert rulings.locator("[data-status=overturned]").count() == 1
