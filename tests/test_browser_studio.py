"""Trainers and progress, in a real browser: sign-in, the Persona Studio, History and the
role checks, on the app served with sign-in on and the scripted fake model."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sim.persona import PERSONA_DIR
from tests.conftest import ROOT
from tests.servers import add_users, field, rapport_app, sign_in

pytestmark = pytest.mark.browser
SCREENSHOTS = ROOT / "docs" / "screenshots"
USERS = {
    "tess": ("trainer", "tess-trainer-pw"),
    "alice": ("trainee", "alice-trainee-pw"),
    "bob": ("trainee", "bob-trainee-pw"),
}
REPLY = "Okay. I just want to know what is going on with it, honestly."
PID = "parcel_delay"
OVERRIDE = "Checked by hand: the fake model in CI only repeats one line."
PERSONA = {
    "name": "Priya Shah",
    "scenario-company": "Swiftpost Couriers",
    "scenario-product": "Next-day parcel delivery",
    "scenario-problem": "A birthday present marked delivered yesterday never arrived.",
    "backstory": "Priya works nights as a nurse and paid extra for next-day delivery.",
    "trainee-brief": "Tracking shows the parcel as delivered at 14:02 yesterday.",
    "opening-line": "Your tracking says my parcel was delivered. It wasn't. Where is it?",
    "speaking-style": "Short, clipped sentences; tired and blunt.",
    "escalates-when": "the agent says the parcel was delivered\nthe agent blames her",
    "softens-when": "the agent believes her\nthe agent opens an investigation",
    "resolution-description": "An investigation opened today and a refund or resend.",
    "resolution-satisfied-by": "investigation\nrefund\nresend",
    "resolution-example-offer": "I'll open an investigation now and resend the parcel today.",
}


@dataclass
class Served:
    url: str
    data: Path
    personas: Path


def _env(data: Path, personas: Path, script: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RAPPORT_DATA_DIR": str(data),
        "RAPPORT_PERSONA_DIR": str(personas),
        "RAPPORT_PROVIDER": "fake",
        "RAPPORT_FAKE_SCRIPT": str(script),
        "RAPPORT_AUTH": "on",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``rapport serve`` with sign-in on, a fresh data dir, a copy of the persona library and
    three accounts made with ``rapport users add``."""
    root = tmp_path_factory.mktemp("studio")
    data, personas = root / "data", root / "personas"
    personas.mkdir()
    for f in PERSONA_DIR.glob("*.yaml"):
        shutil.copy(f, personas / f.name)
    script = root / "script.json"
    script.write_text(json.dumps([REPLY] * 600))  # previews, probe checks and practice
    env = _env(data, personas, script)
    add_users(env, USERS)
    with rapport_app(env, root / "app.log") as url:
        yield Served(url, data, personas)


def login(browser: Any, url: str, name: str) -> Any:
    return sign_in(browser, url, name, USERS[name][1])


def choose(page: Any, elem_id: str, option: str | re.Pattern[str]) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).first.click()


def yaml_text(page: Any) -> str:
    return str(page.locator("#studio-yaml .cm-content").inner_text())


BOTS = "document.querySelectorAll('{sel} .message-row.bot-row').length"


def test_trainer_builds_a_persona_and_trainees_see_only_their_own(
    served: Served, browser: Any
) -> None:
    # --- the trainer creates, previews, checks and publishes a persona ------------------------
    page = login(browser, served.url, "tess")
    page.get_by_role("tab", name="Persona Studio").click()
    page.locator("#studio-library").get_by_text("irate_broadband_outage").wait_for()
    field(page, "studio-new-id").fill(PID)
    page.locator("#studio-new").click()
    page.locator("#studio-status").get_by_text("New persona").wait_for()
    for key, value in PERSONA.items():
        field(page, f"studio-f-{key}").fill(value)
    choose(page, "studio-f-archetype", "irate")
    choose(page, "studio-f-difficulty", "medium")
    field(page, "studio-f-emotional-baseline").fill("42")
    problems = page.locator("#studio-problems")
    problems.get_by_text("emotional_baseline: Input should be less than or equal to 10").wait_for()
    page.wait_for_function(
        "() => document.querySelector('#studio-problems').innerText.includes('1 problem(s)')"
    )
    assert f"{PID}.yaml: emotional_baseline:" in problems.inner_text()
    field(page, "studio-f-emotional-baseline").fill("6")
    problems.locator("[data-valid=true]").wait_for()
    text = yaml_text(page)
    assert "emotional_baseline: 6" in text and "name: Priya Shah" in text

    page.locator("#studio-save").click()
    page.locator("#studio-status").get_by_text(f"Saved {PID} v1").wait_for()

    page.locator("#studio-preview-start").click()
    preview = BOTS.format(sel="#studio-preview-chat")
    page.wait_for_function(f"() => {preview} === 1")
    assert "delivered" in page.locator("#studio-preview-chat").inner_text()
    field(page, "studio-preview-msg").fill("I'm sorry, that's frustrating. What happened?")
    page.locator("#studio-preview-send").click()
    page.wait_for_function(f"() => {preview} === 2")
    assert REPLY[:20] in page.locator("#studio-preview-chat").inner_text()

    page.locator("#studio-check").click()
    report = page.locator("#studio-check-result .rp-check-report")
    report.wait_for(timeout=150_000)
    assert page.locator("#studio-check-result .rp-check").count() == 4
    assert re.search(r"\b(PASS|FAIL)\b", report.inner_text())
    passed = report.get_attribute("data-passed") == "true"
    publish = page.locator("#studio-publish")
    if not passed:  # the fake model can't play every check: publish with a written reason
        assert publish.is_disabled()
        field(page, "studio-override").fill(OVERRIDE)
        page.wait_for_function("() => !document.querySelector('#studio-publish').disabled")
    publish.click()
    page.locator("#studio-status").get_by_text(f"Published {PID} v1").wait_for()
    sidecar = json.loads((served.personas / "_versions" / PID / "1.json").read_text())
    assert sidecar["published"] is True and sidecar["published_by"] == "tess"
    if passed:
        assert sidecar["check_passed"] is True
    else:
        assert sidecar["override_reason"] == OVERRIDE and sidecar["check_passed"] is False
    assert (served.personas / f"{PID}.yaml").exists()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#studio-id").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(SCREENSHOTS / "studio.png"))

    # --- a trainee practises with it, then finds the session in History ----------------------
    alice = login(browser, served.url, "alice")
    assert alice.get_by_role("tab", name="Persona Studio").count() == 0
    choose(alice, "persona-picker", "Priya Shah")
    alice.locator("#persona-card").get_by_text("Swiftpost Couriers").wait_for()
    # picking her puts her opening line in a live session: no button to press first
    chat = BOTS.format(sel="#chat")
    alice.locator("#chat .message-row.bot-row").get_by_text(PERSONA["opening-line"]).wait_for()
    alice.wait_for_function(f"() => {chat} === 1")
    field(alice, "message").fill("I'm so sorry, that sounds stressful. What happened?")
    field(alice, "message").press("Enter")
    alice.wait_for_function(f"() => {chat} === 2")
    alice.wait_for_function("() => !document.querySelector('#status').innerText.includes('typing')")
    alice.locator("#end-session").click()
    alice.locator("#feedback-card").wait_for(timeout=120_000)
    with sqlite3.connect(served.data / "rapport.sqlite3") as con:
        rows = con.execute(
            "SELECT id, user_id, persona_id FROM sessions"
            " WHERE id IN (SELECT session_id FROM turns WHERE role = 'agent')"
        ).fetchall()
        opened = con.execute(  # opened on a page and never written in: the opening line only
            "SELECT COUNT(*) FROM turns WHERE session_id NOT IN (SELECT session_id FROM turns"
            " WHERE role = 'agent') AND idx > 0"
        ).fetchone()[0]
    assert len(rows) == 1 and rows[0][1:] == ("alice", PID) and opened == 0
    sid = rows[0][0]

    alice.get_by_role("tab", name="History").click()
    table = alice.locator("#history-table")
    alice.wait_for_function(
        f"() => document.querySelector('#history-table').innerText.includes('{sid[:8]}')"
    )
    assert "Priya Shah" in table.inner_text()
    alice.locator("#progress-plot img").wait_for()
    assert "1 graded practice session" in alice.locator("#progress-summary").inner_text()
    alice.locator("#history-table").evaluate("e => e.scrollIntoView({block: 'start'})")
    alice.screenshot(path=str(SCREENSHOTS / "progress.png"))
    # open it: the replay with per-turn technique tags, its feedback and trace; export it
    choose(alice, "history-session", re.compile(sid[:8]))
    alice.locator(f"#replay-card[data-session='{sid}']").wait_for()
    assert alice.locator("#replay .rp-turn").count() == 3
    assert alice.locator("#replay .rp-tag-technique").count() >= 1
    alice.locator("#replay-feedback-card").wait_for()
    alice.locator("#replay-trace img").wait_for()
    alice.locator("#export-md").click()
    link = alice.locator(f"#export-file a[download='rapport-session-{sid[:8]}.md']")
    link.wait_for()
    report_md = alice.request.get(link.get_attribute("href")).text()
    assert "Rapport session report" in report_md and "Priya Shah" in report_md

    # --- another trainee sees none of it, on the page or through the API ---------------------
    bob = login(browser, served.url, "bob")
    bob.get_by_role("tab", name="History").click()
    bob.locator("#progress-summary").get_by_text("0 graded practice session").wait_for()
    assert sid[:8] not in bob.locator("#history-table").inner_text()
    assert "Priya Shah" not in bob.locator("#history-table").inner_text()

    from gradio_client import Client

    as_alice = Client(served.url, auth=("alice", USERS["alice"][1]), verbose=False)
    path = as_alice.predict(sid, api_name="/export_json")
    assert json.loads(Path(path).read_text())["id"] == sid
    as_bob = Client(served.url, auth=("bob", USERS["bob"][1]), verbose=False)
    with pytest.raises(Exception, match="belongs to another trainee"):
        as_bob.predict(sid, api_name="/export_json")
    with pytest.raises(Exception, match="Only trainers"):
        as_bob.predict(PID, api_name="/studio_open")
