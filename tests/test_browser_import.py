"""A real conversation becomes practice, in a real browser: a trainer imports a chat
transcript, reads its feedback card (personal data masked), presses **Practise this
customer**, finds the draft in the Persona Studio, publishes it after the probe check, and a
trainee plays the new customer. Served with sign-in on and the scripted fake model;
screenshots for the README."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sim.persona import PERSONA_DIR, load_persona_file
from tests.conftest import ROOT
from tests.servers import add_users, field, rapport_app, sign_in

pytestmark = pytest.mark.browser
SCREENSHOTS = ROOT / "docs" / "screenshots"
SAMPLE = ROOT / "docs" / "samples" / "chat-broadband.txt"
USERS = {"tess": ("trainer", "tess-trainer-pw"), "alice": ("trainee", "alice-trainee-pw")}
REPLY = "Okay. I just want to know when it will be fixed, honestly."
PID = "broadband_from_chat"
OVERRIDE = "Read the draft through: the fake model in CI only repeats one line."
# in the sample, and never to be shown once imported
PERSONAL = ("07700 900461", "sarah.jones@example.com", "LS6 2QT", "40318855")
BOTS = "document.querySelectorAll('#chat .message-row.bot-row').length"


@dataclass
class Served:
    url: str
    data: Path
    personas: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("import")
    data, personas = root / "data", root / "personas"
    personas.mkdir()
    for f in PERSONA_DIR.glob("*.yaml"):
        shutil.copy(f, personas / f.name)
    script = root / "script.json"
    script.write_text(json.dumps([REPLY] * 400))  # probe checks and practice
    env = {
        **os.environ,
        "RAPPORT_DATA_DIR": str(data),
        "RAPPORT_PERSONA_DIR": str(personas),
        "RAPPORT_PROVIDER": "fake",
        "RAPPORT_FAKE_SCRIPT": str(script),
        "RAPPORT_AUTH": "on",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    add_users(env, USERS)
    with rapport_app(env, root / "app.log") as url:
        yield Served(url, data, personas)


def login(browser: Any, url: str, name: str) -> Any:
    return sign_in(browser, url, name, USERS[name][1])


def upload(page: Any, path: Path) -> None:
    page.locator("#import-file input[type=file]").set_input_files(str(path))
    page.locator("#import-file").get_by_text(path.name).first.wait_for()


def test_a_trainer_turns_a_real_chat_into_a_customer_a_trainee_plays(
    served: Served, browser: Any
) -> None:
    # --- the trainer imports the chat: the speakers are names, so they say who the agent is
    tess = login(browser, served.url, "tess")
    tess.get_by_role("tab", name="Import a conversation").click()
    upload(tess, SAMPLE)
    tess.locator("#import-run").click()
    agents = tess.locator("#import-agents")
    agents.get_by_label("Tom", exact=True).check()
    assert tess.locator("#import-feedback-card").count() == 0  # nothing graded yet
    tess.locator("#import-run").click()
    card = tess.locator("#import-feedback-card")
    card.wait_for(timeout=120_000)
    status = tess.locator("#import-status").inner_text()
    assert "Imported 1 real conversation" in status and "phone" in status
    text = card.inner_text()
    assert "internet has been down since Monday" in text  # the customer's words
    assert "BB-558120" in text and "£34.99" in text  # near-misses kept
    for secret in PERSONAL:
        assert secret not in text and secret not in tess.content()
    assert card.locator(".rp-chip").count() >= 1  # the technique verdicts
    tess.locator("#import-status").evaluate("e => e.scrollIntoView({block: 'start'})")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tess.screenshot(path=str(SCREENSHOTS / "import.png"))

    # --- Practise this customer: a draft persona, opened in the Studio, not yet published ---
    field(tess, "import-new-id").fill(PID)
    tess.locator("#import-practise").click()
    tess.get_by_role("tab", name="Persona Studio", selected=True).wait_for()
    tess.wait_for_function(
        f"() => document.querySelector('#studio-id input, #studio-id textarea').value === '{PID}'"
    )
    draft_name = field(tess, "studio-f-name").input_value()
    opening = field(tess, "studio-f-opening-line").input_value()
    assert draft_name and "internet" in opening
    yaml_text = tess.locator("#studio-yaml .cm-content").inner_text()
    assert "Brightline Broadband" in yaml_text
    for secret in PERSONAL:
        assert secret not in yaml_text
    assert not (served.personas / f"{PID}.yaml").exists()  # a draft: not on offer yet
    tess.locator("#studio-id").evaluate("e => e.scrollIntoView({block: 'start'})")
    tess.screenshot(path=str(SCREENSHOTS / "draft.png"))

    # --- the usual probe check, then publish ------------------------------------------------
    tess.locator("#studio-check").click()
    report = tess.locator("#studio-check-result .rp-check-report")
    report.wait_for(timeout=150_000)
    publish = tess.locator("#studio-publish")
    if report.get_attribute("data-passed") != "true":  # the fake model can't pass every check
        assert publish.is_disabled()
        field(tess, "studio-override").fill(OVERRIDE)
        tess.wait_for_function("() => !document.querySelector('#studio-publish').disabled")
    publish.click()
    tess.locator("#studio-status").get_by_text(f"Published {PID} v1").wait_for()
    published = load_persona_file(served.personas / f"{PID}.yaml")
    assert published.name == draft_name and published.opening_line == opening

    # --- a trainee plays the new customer -----------------------------------------------------
    alice = login(browser, served.url, "alice")
    assert alice.get_by_role("tab", name="Persona Studio").count() == 0
    alice.locator("#persona-picker input").click()
    alice.get_by_role("option", name=draft_name).first.click()
    alice.locator("#persona-card").get_by_text(f"{draft_name} · Brightline Broadband").wait_for()
    alice.locator("#chat .message-row.bot-row").get_by_text(opening[:40]).wait_for()
    field(alice, "message").fill("I'm so sorry you've lost two days of work. What's happening?")
    field(alice, "message").press("Enter")
    alice.wait_for_function(f"() => {BOTS} === 2")
    # the reply streams into the second bubble ("…" until its first sentence is through)
    alice.locator("#chat .message-row.bot-row").nth(1).get_by_text(REPLY[:20]).wait_for()
    assert REPLY[:20] in alice.locator("#chat").inner_text()

    # --- a trainee can import their own chat too, but not make a customer of it -------------
    alice.get_by_role("tab", name="Import a conversation").click()
    upload(alice, SAMPLE)
    alice.locator("#import-run").click()
    alice.locator("#import-agents").get_by_label("Tom", exact=True).check()
    alice.locator("#import-run").click()
    alice.locator("#import-feedback-card").wait_for(timeout=120_000)
    assert not alice.locator("#import-practise").is_visible()
