"""Faults from an OpenAI-compatible customer model, through the real ``openai`` provider
(LangChain ``ChatOpenAI`` + the ``openai`` client) against ``tests/fake_openai.py``.

Every fault must end in a clear ``SimulatorError`` or a good reply; the trainee's message is
always kept, a resend after recovery never stores a duplicate agent turn, retries are
bounded by ``max_retries``, and no empty or half-streamed customer turn is ever stored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from common.settings import Settings
from common.turns import Turn
from providers.registry import get_chat_model
from rubric.grader import Grader, TurnGrade, Verdict, combine
from rubric.judge import LLMJudge
from rubric.techniques import CORE_TECHNIQUES, load_rubric
from sim.director import no_rules
from sim.persona import load_personas
from sim.practice import Practice, PracticeSession
from sim.simulator import SimulatorError
from storage import SessionStore
from tests.conftest import cue_signals
from tests.fake_openai import (
    FakeOpenAI,
    cut_stream,
    delay,
    empty,
    fake_openai,
    malformed,
    ok,
    refused_url,
    status,
)

pytestmark = pytest.mark.server

PID = "confused_energy_bill"
MSG = "I'm sorry about the shock of that bill. What does it say the charge is for?"
REPLY = "It just says estimated usage. I don't know what that means, love."
TIMEOUT = 0.5
RETRIES = 1


@pytest.fixture(scope="module")
def module_server() -> Iterator[FakeOpenAI]:
    with fake_openai() as srv:
        yield srv


@pytest.fixture
def srv(module_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    module_server.reset()
    yield module_server
    assert module_server.exhausted == 0, "the test sent more requests than it planned"


def make_practice(tmp_path: Path, base_url: str, max_retries: int = RETRIES) -> Practice:
    settings = Settings(
        provider="openai",
        base_url=base_url,
        api_key="x",
        model="fake-model",
        request_timeout=TIMEOUT,
        max_retries=max_retries,
        data_dir=tmp_path / "data",
    )
    settings.ensure_dirs()
    return Practice(
        settings,
        SessionStore(settings.db_path),
        load_personas(),
        model_factory=get_chat_model,  # the real openai provider
        signals_factory=lambda s: cue_signals,
        matcher_factory=lambda s: no_rules,
    )


@pytest.fixture
def practice_for(tmp_path: Path) -> Iterator[object]:
    made: list[Practice] = []

    def build(base_url: str, max_retries: int = RETRIES) -> Practice:
        made.append(make_practice(tmp_path, base_url, max_retries))
        return made[-1]

    yield build
    for p in made:
        p.store.close()


def roles(session: PracticeSession) -> list[str]:
    return [t.role for t in session.record.turns]


def fails(session: PracticeSession, match: str) -> SimulatorError:
    with pytest.raises(SimulatorError, match=match) as info:
        list(session.respond(MSG))
    # the trainee's message is kept and waits for a reply; nothing else was stored
    assert roles(session) == ["customer", "agent"]
    assert session.record.turns[-1].text == MSG and session.pending_reply()
    return info.value


def recovers(session: PracticeSession, srv: FakeOpenAI, text: str = REPLY) -> None:
    """A resend of the same message after the server recovers: one reply, no duplicate."""
    srv.plan(ok(text))
    list(session.respond(MSG))
    turns = session.record.turns
    assert [(t.role, t.text) for t in turns[1:]] == [("agent", MSG), ("customer", text)]
    assert not session.pending_reply()


# --- the provider on its own: what the openai client does with each fault ----------------


def test_the_fake_server_speaks_openai(srv: FakeOpenAI, tmp_path: Path) -> None:
    import httpx
    from langchain_core.messages import HumanMessage

    models = httpx.get(srv.base_url + "/models").json()
    assert models["data"][0]["id"] == "fake-model"
    model = get_chat_model(make_practice(tmp_path, srv.base_url).settings)
    srv.plan(ok("Hello there."), ok("Plain JSON."))
    assert "".join(c.text for c in model.stream([HumanMessage("hi")])) == "Hello there."
    assert model.bind(stream=False).invoke([HumanMessage("hi")]).content == "Plain JSON."
    first, second = srv.chat_requests
    assert first.stream and not second.stream and first.body["model"] == "fake-model"
    assert first.body["messages"] == [{"role": "user", "content": "hi"}]
    assert second.body["messages"] == first.body["messages"]


# --- timeouts and unreachable servers -----------------------------------------------------


def test_timeout_keeps_the_message_and_a_resend_gets_the_reply(
    srv: FakeOpenAI, practice_for: object
) -> None:
    session = practice_for(srv.base_url).start(PID)  # type: ignore[operator]
    srv.plan(delay(5), delay(5))  # both the first try and the one retry time out
    err = fails(session, "did not answer within 0.5 s")
    assert str(err) == "The customer model did not answer within 0.5 s."
    assert srv.count == RETRIES + 1
    recovers(session, srv)
    assert srv.count == RETRIES + 2


def test_a_stream_that_stalls_mid_reply_times_out_without_retry(
    srv: FakeOpenAI, practice_for: object
) -> None:
    session = practice_for(srv.base_url).start(PID)  # type: ignore[operator]
    srv.plan(delay(5, text=REPLY, after_chunks=3))
    fails(session, "did not answer within 0.5 s")
    assert srv.count == 1  # the openai client retries requests, not half-read streams
    recovers(session, srv)


def test_connection_refused_keeps_the_message_and_recovers(practice_for: object) -> None:
    url = refused_url()
    session = practice_for(url).start(PID)  # type: ignore[operator]
    err = fails(session, "Can't reach the customer model")
    assert str(err) == f"Can't reach the customer model at {url}."
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with fake_openai(port=port) as later:  # the model server comes up on that address
        recovers(session, later)
        assert later.count == 1


# --- HTTP errors: bounded retries with backoff ---------------------------------------------


@pytest.mark.parametrize(
    ("code", "retry_after", "min_gap"),
    [
        (429, 0.3, 0.3),  # Retry-After is honoured
        (503, None, 0.5 * 0.75),  # exponential backoff: 0.5 s less up to 25% jitter
        (502, None, 0.5 * 0.75),
    ],
)
def test_transient_error_then_ok_succeeds_after_one_retry(
    srv: FakeOpenAI,
    practice_for: object,
    code: int,
    retry_after: float | None,
    min_gap: float,
) -> None:
    session = practice_for(srv.base_url).start(PID)  # type: ignore[operator]
    srv.plan(status(code, retry_after=retry_after), ok(REPLY))
    list(session.respond(MSG))
    assert roles(session) == ["customer", "agent", "customer"]
    assert session.record.turns[-1].text == REPLY
    assert srv.count == 2
    (gap,) = srv.gaps()
    assert min_gap <= gap < min_gap + 2.0


@pytest.mark.parametrize("code", [500, 503])
def test_persistent_server_error_gives_up_after_max_retries(
    srv: FakeOpenAI, practice_for: object, code: int
) -> None:
    retries = 2
    session = practice_for(srv.base_url, max_retries=retries).start(PID)  # type: ignore[operator]
    # one more good answer is queued: a client that retried without bound would get it
    srv.plan(*[status(code)] * (retries + 1), ok("never sent"))
    err = fails(session, rf"server failed \(HTTP {code}\)")
    assert str(err) == f"The customer model's server failed (HTTP {code})."
    assert srv.count == retries + 1
    gaps = srv.gaps()
    assert len(gaps) == retries and gaps[1] > gaps[0] * 0.75 * 1.5  # the backoff grows
    srv.reset()
    recovers(session, srv)


def test_persistent_rate_limit_is_a_clear_error(srv: FakeOpenAI, practice_for: object) -> None:
    session = practice_for(srv.base_url).start(PID)  # type: ignore[operator]
    srv.plan(status(429, retry_after=0.1), status(429, retry_after=0.1))
    err = fails(session, "HTTP 429")
    assert str(err) == "The customer model is busy (HTTP 429, rate limited)."
    assert srv.count == RETRIES + 1


def test_a_client_error_is_not_retried(srv: FakeOpenAI, practice_for: object) -> None:
    session = practice_for(srv.base_url).start(PID)  # type: ignore[operator]
    srv.plan(status(404, message="model 'fake-model' not found"))
    fails(session, r"refused the request \(HTTP 404\).*not found")
    assert srv.count == 1


# --- broken streams and bodies: nothing half-stored -----------------------------------------


def test_stream_cut_mid_reply_is_an_error_and_stores_nothing(
    srv: FakeOpenAI, practice_for: object
) -> None:
    """The connection drops mid chunked body: httpx sees an incomplete body."""
    session = practice_for(srv.base_url).start(PID)  # type: ignore[operator]
    srv.plan(cut_stream(after_chunks=4, text=REPLY))
    err = fails(session, "dropped mid-reply")
    assert str(err) == "The connection to the customer model dropped mid-reply."
    assert srv.count == 1  # not retried: part of the reply had been read
    recovers(session, srv)


def test_stream_closed_early_without_finish_is_an_error_not_a_fragment(
    srv: FakeOpenAI, practice_for: object
) -> None:
    """The body ends cleanly at a close but lacks [DONE] and a finish_reason. The openai
    client and LangChain treat that as a normal end and return the fragment; the simulator
    notices that no finish_reason arrived and refuses to store it."""
    from langchain_core.messages import HumanMessage

    practice = practice_for(srv.base_url)  # type: ignore[operator]
    srv.plan(cut_stream(after_chunks=4, text="I was charged. Twice this month.", framing="close"))
    fragment = "".join(c.text for c in practice.model.stream([HumanMessage("hi")]))
    assert fragment == "I was charged. Twice "  # what the client alone would hand over

    session = practice.start(PID)
    srv.plan(cut_stream(after_chunks=4, text="I was charged. Twice this month.", framing="close"))
    err = fails(session, "cut off mid-stream")
    assert str(err) == "The customer model's reply was cut off mid-stream."
    # a separate read-only connection sees exactly what was committed
    uri = f"file:{practice.settings.db_path}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute(
            "SELECT role, text FROM turns WHERE session_id = ? ORDER BY idx", (session.id,)
        ).fetchall()
    assert [r[0] for r in rows] == ["customer", "agent"]
    assert "I was charged" not in json.dumps(rows)
    recovers(session, srv)


def test_malformed_stream_is_a_clear_error(srv: FakeOpenAI, practice_for: object) -> None:
    session = practice_for(srv.base_url).start(PID)  # type: ignore[operator]
    srv.plan(malformed())
    err = fails(session, "could not be read")
    assert str(err) == "The customer model sent a reply that could not be read."
    assert srv.count == 1  # a body that can't be parsed is not retried
    recovers(session, srv)


def test_empty_reply_is_regenerated(srv: FakeOpenAI, practice_for: object) -> None:
    session = practice_for(srv.base_url).start(PID)  # type: ignore[operator]
    srv.plan(empty(), ok(REPLY))
    list(session.respond(MSG))
    last = session.record.turns[-1]
    assert (last.role, last.text) == ("customer", REPLY)
    assert last.meta["regenerated"] is True and last.meta["breaks"] == ["empty"]
    assert srv.count == 2


def test_empty_replies_fall_back_in_character(srv: FakeOpenAI, practice_for: object) -> None:
    session = practice_for(srv.base_url).start(PID)  # type: ignore[operator]
    srv.plan(empty(), empty())
    list(session.respond(MSG))
    turns = session.record.turns
    assert [t.role for t in turns] == ["customer", "agent", "customer"]
    assert turns[-1].text.strip() and turns[-1].meta["fallback"] is True
    assert srv.count == 2  # one regeneration, then the deterministic line
    assert all(t.text.strip() for t in turns)  # never an empty stored turn


# --- the LLM judge against the same faults ---------------------------------------------------

TURNS = [
    Turn("customer", "My parcel was marked delivered but it never arrived."),
    Turn("agent", "That's really worrying. When was it marked as delivered?"),
    Turn("customer", "Yesterday at 3pm."),
    Turn("agent", "I'll open a lost-parcel claim now."),
]


def _judge(srv_url: str, tmp_path: Path, retries: int = RETRIES) -> tuple[Grader, LLMJudge]:
    settings = make_practice(tmp_path, srv_url, retries).settings
    judge = LLMJudge(get_chat_model(settings))
    # the judge needs only the rubric (no guidance store, no exemplar index)
    return Grader(load_rubric(), None, None, judge=judge), judge  # type: ignore[arg-type]


def _classifier_grades() -> list[TurnGrade]:
    """Stand-ins for the classifier: one abstention, the rest scored."""
    out = []
    for i in (1, 3):
        verdicts = {t: Verdict(used=(t == "listen"), confidence=0.8) for t in CORE_TECHNIQUES}
        verdicts["affirm"] = Verdict(used=None, note="classifier abstained")
        out.append(TurnGrade(index=i, techniques=verdicts))
    return out


@pytest.mark.parametrize(
    ("plan", "requests", "note"),
    [
        ([malformed()], 1, "judge failed: JSONDecodeError"),
        ([status(500)] * (RETRIES + 1), RETRIES + 1, "judge failed: "),
        ([ok("Sure! listen: yes, validate: no.")], 1, "unparseable"),
        ([empty()], 1, "unparseable"),
        ([cut_stream(after_chunks=2, text='{"turns": [{"index": 1}]}')], 1, "judge failed: "),
    ],
    ids=["malformed", "http-500", "prose", "empty", "cut"],
)
def test_judge_failure_leaves_its_verdicts_not_scored(
    srv: FakeOpenAI, tmp_path: Path, plan: list[object], requests: int, note: str
) -> None:
    grader, judge = _judge(srv.base_url, tmp_path)
    srv.plan(*plan)  # type: ignore[arg-type]
    verdicts, error = judge.judge(TURNS, grader.judge_brief())
    # the judge scored nothing: every verdict is None, none defaulted to used/not used
    assert verdicts == {1: dict.fromkeys(CORE_TECHNIQUES), 3: dict.fromkeys(CORE_TECHNIQUES)}
    assert srv.count == requests
    assert srv.chat_requests[0].body["response_format"] == {"type": "json_object"}
    assert (error is None) == (note == "unparseable")

    srv.reset()
    srv.plan(*plan)  # type: ignore[arg-type]
    classifier = _classifier_grades()
    given = [g.model_copy(deep=True) for g in classifier]
    combined = combine(TURNS, given, judge.judge(TURNS, grader.judge_brief()))
    assert given == classifier  # the classifier's grades are left as they were
    for g, c in zip(combined, classifier, strict=True):
        for tid, v in g.techniques.items():
            # what is shown is the classifier's own verdict, marked as not judged, never a
            # verdict the judge seemed to give
            assert v.source == "classifier" and not v.disagreement
            assert v.used is c.techniques[tid].used
            assert v.note and note in v.note
        assert g.techniques["affirm"].used is None  # abstained and not judged: not scored
