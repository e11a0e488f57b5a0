"""Disputes and rulings: storage and migration on SQLite and PostgreSQL, the role checks
(trainee, trainer, other trainees, private sessions) and the rulings as labelled data."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from storage import (
    MIGRATIONS,
    SessionStore,
    m001_initial,
    m002_branches,
    m003_users,
)
from tests.test_postgres_store import PgServer, pg_server  # noqa: F401  (a fixture)
from training.disputes import (
    DisputeError,
    get_dispute,
    list_disputes,
    open_dispute,
    review,
    rule,
    rulings_data,
    verdicts_of,
)
from training.users import LOCAL_USER, PermissionDenied, User

ALICE, BOB, TESS = User("alice", "trainee"), User("bob", "trainee"), User("tess", "trainer")
PID = "irate_broadband_outage"
TURNS = [
    ("customer", "My internet has been down since Monday and nobody calls back!"),
    ("agent", "When did it start exactly?"),
    ("customer", "Monday morning. I work from home."),
    ("agent", "That sounds really stressful when you work from home."),
]


def feedback(validate_used: bool = False) -> dict[str, Any]:
    """Saved feedback in ``rubric.feedback.Feedback``'s shape: two graded agent turns."""

    def v(used: bool | None, conf: float, evidence: str | None = None) -> dict[str, Any]:
        return {
            "used": used,
            "evidence": evidence,
            "guidance_ids": ["g-validate-1"] if used is not None else [],
            "confidence": conf,
            "source": "classifier",
        }

    return {
        "techniques": [
            {
                "id": "validate",
                "label": "Validate",
                "status": "used" if validate_used else "missed",
                "citations": [
                    {"id": "g-other", "title": "Other", "source": "book", "excerpt": "..."},
                    {
                        "id": "g-validate-1",
                        "title": "Name the feeling",
                        "source": "guide.md",
                        "excerpt": "Say what the customer feels, in your own words.",
                    },
                ],
            }
        ],
        "markers": [],
        "summary": "",
        "rubric_version": 3,
        "grades": [
            {
                "index": 1,
                "techniques": {
                    "listen": v(True, 0.93, "When did it start exactly?"),
                    "validate": v(False, 0.71),
                    "affirm": v(None, 0.5),
                },
            },
            {
                "index": 3,
                "techniques": {
                    "listen": v(False, 0.66),
                    "validate": v(validate_used, 0.58, "That sounds really stressful"),
                    "affirm": v(None, 0.5),
                },
            },
        ],
    }


def graded(store: SessionStore, user: str | None, private: bool = False) -> str:
    sid = store.create_session(PID, "v1", {}, user, private=private)
    for role, text in TURNS:
        store.add_turn(sid, role, text)  # type: ignore[arg-type]
    store.end_session(sid, feedback=feedback())
    return sid


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    if request.param == "sqlite":
        where: Path | str = tmp_path / "data" / "rapport.sqlite3"
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        where = server.new_database()
    s = SessionStore(where)
    yield s
    s.close()


# --- storage ----------------------------------------------------------------------------------
def test_a_dispute_keeps_the_verdict_its_confidence_and_the_session(store: SessionStore) -> None:
    sid = graded(store, "alice")
    d = open_dispute(store, ALICE, sid, 3, "validate", "  I named   her stress.  ", share_turn=True)
    assert (d.session_id, d.turn_idx, d.turn, d.technique) == (sid, 3, 2, "validate")
    assert d.verdict is False and d.confidence == pytest.approx(0.58)
    assert d.evidence == "That sounds really stressful"
    assert d.reason == "I named her stress."  # whitespace folded
    assert d.shared and d.trainee == "alice" and not d.private
    assert d.status == "open" and d.label is None and d.ruled_by is None
    assert [c["id"] for c in d.guidance] == ["g-validate-1", "g-other"]  # the verdict's own first
    assert d.grader["rubric_version"] == 3 and d.grader["source"] == "classifier"

    # a second store (another process) reads the same row back
    other = SessionStore(store.url if store.path is None else store.path)
    assert get_dispute(other, ALICE, d.id) == d
    other.close()

    ruled = rule(store, TESS, d.id, "overturn", "Yes, she named the feeling.")
    assert (ruled.status, ruled.ruled_by, ruled.note, ruled.label) == (
        "overturned",
        "tess",
        "Yes, she named the feeling.",
        True,
    )
    assert ruled.ruled_at
    with pytest.raises(DisputeError, match="ruled on already"):
        rule(store, TESS, d.id, "uphold")
    assert get_dispute(store, ALICE, d.id).status == "overturned"  # the first ruling stands


def test_bad_disputes_are_refused_and_store_nothing(store: SessionStore) -> None:
    sid = graded(store, "alice")
    with pytest.raises(DisputeError, match="not scored"):
        open_dispute(store, ALICE, sid, 1, "affirm", "It was there.")
    with pytest.raises(DisputeError, match="no verdict"):
        open_dispute(store, ALICE, sid, 2, "validate", "That is a customer turn.")
    with pytest.raises(DisputeError, match="no verdict"):
        open_dispute(store, ALICE, sid, 1, "nonsense", "No such technique.")
    with pytest.raises(DisputeError, match="at least 3"):
        open_dispute(store, ALICE, sid, 1, "validate", "  ")
    with pytest.raises(DisputeError, match="under 500"):
        open_dispute(store, ALICE, sid, 1, "validate", "x" * 501)
    with pytest.raises(DisputeError, match="no such session"):
        open_dispute(store, ALICE, "nope", 1, "validate", "Reason here.")
    unended = store.create_session(PID, "v1", {}, "alice")
    with pytest.raises(DisputeError, match="no feedback"):
        open_dispute(store, ALICE, unended, 1, "validate", "Reason here.")
    assert store.dispute_rows() == []

    open_dispute(store, ALICE, sid, 1, "validate", "I did validate.")
    with pytest.raises(DisputeError, match="already disputed"):
        open_dispute(store, ALICE, sid, 1, "validate", "Again.")
    assert len(store.dispute_rows()) == 1
    with pytest.raises(DisputeError, match="uphold or overturn"):
        rule(store, TESS, store.dispute_rows()[0]["id"], "maybe")
    with pytest.raises(DisputeError, match="no dispute #999"):
        rule(store, TESS, 999, "uphold")
    with pytest.raises(sqlalchemy.exc.IntegrityError):  # the status CHECK holds on both
        store.rule_dispute(int(store.dispute_rows()[0]["id"]), "pending", "tess", "")
    with pytest.raises(ValueError, match="not dispute columns"):
        store.dispute_rows(**{"1=1; --": 1})


def test_disputes_go_with_their_session(store: SessionStore) -> None:
    sid = graded(store, "alice")
    open_dispute(store, ALICE, sid, 1, "listen", "It was a question.")
    if store.dialect == "sqlite":
        assert store.path is not None
        with sqlite3.connect(store.path) as con:
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("DELETE FROM sessions WHERE id = ?", (sid,))
    else:
        engine = sqlalchemy.create_engine(store.url)
        with engine.begin() as con:
            con.execute(sqlalchemy.text("DELETE FROM sessions WHERE id = :id"), {"id": sid})
        engine.dispose()
    assert store.dispute_rows() == []


def test_migration_m004_upgrades_an_m003_database(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    con = sqlite3.connect(db)
    with con:
        con.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        for m in (m001_initial, m002_branches, m003_users):
            m(con)
            con.execute("INSERT INTO _migrations VALUES (?, 'x')", (m.__name__,))
        con.execute(
            "INSERT INTO sessions (id, persona_id, persona_version, started_at, user_id)"
            " VALUES ('s1', 'p', 'v', 't', 'alice')"
        )
    con.close()
    store = SessionStore(db)
    assert store.get_session("s1").user_id == "alice"  # the old rows are kept
    assert store.dispute_rows() == []
    store.close()
    SessionStore(db).close()  # idempotent
    with sqlite3.connect(db) as c:
        names = [r[0] for r in c.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [n for n, _ in MIGRATIONS] and "m004_disputes" in names


# --- roles ------------------------------------------------------------------------------------
def test_only_the_owner_disputes_and_only_trainers_rule(store: SessionStore) -> None:
    sid = graded(store, "alice")
    with pytest.raises(PermissionDenied, match="only your own"):
        open_dispute(store, BOB, sid, 1, "listen", "Not mine but still.")
    with pytest.raises(PermissionDenied, match="only your own"):
        open_dispute(store, TESS, sid, 1, "listen", "A trainer is not the owner.")
    d = open_dispute(store, ALICE, sid, 1, "listen", "It was a question.")
    for someone in (ALICE, BOB):
        with pytest.raises(PermissionDenied, match="Only trainers"):
            rule(store, someone, d.id, "overturn")
    assert get_dispute(store, TESS, d.id).status == "open"


def test_trainees_see_only_their_own_disputes(store: SessionStore) -> None:
    a = open_dispute(store, ALICE, graded(store, "alice"), 1, "listen", "Alice disagrees.")
    b = open_dispute(store, BOB, graded(store, "bob"), 3, "validate", "Bob disagrees.")
    assert [d.id for d in list_disputes(store, ALICE)] == [a.id]
    assert [d.id for d in list_disputes(store, BOB)] == [b.id]
    assert [d.id for d in list_disputes(store, TESS)] == [a.id, b.id]
    assert [d.id for d in list_disputes(store, TESS, trainee="bob")] == [b.id]
    assert [d.id for d in list_disputes(store, TESS, technique="listen")] == [a.id]
    assert list_disputes(store, TESS, technique="listen", trainee="bob") == []
    assert [d.id for d in list_disputes(store, ALICE, trainee="alice")] == [a.id]
    with pytest.raises(PermissionDenied, match="only your own"):
        list_disputes(store, ALICE, trainee="bob")
    assert list_disputes(store, BOB, technique="listen") == []  # Alice's stays hidden
    with pytest.raises(PermissionDenied, match="another trainee"):
        get_dispute(store, BOB, a.id)
    with pytest.raises(PermissionDenied, match="another trainee"):
        review(store, BOB, a.id)
    rule(store, TESS, a.id, "uphold")
    assert [d.id for d in list_disputes(store, TESS, status="open")] == [b.id]
    assert [d.id for d in list_disputes(store, ALICE, status="upheld")] == [a.id]
    with pytest.raises(DisputeError, match="Unknown status"):
        list_disputes(store, TESS, status="closed")  # type: ignore[arg-type]


def test_a_private_session_shows_trainers_the_turn_only_if_shared(store: SessionStore) -> None:
    sid = graded(store, "alice", private=True)
    kept = open_dispute(store, ALICE, sid, 3, "validate", "I named the stress.")
    shared = open_dispute(store, ALICE, sid, 1, "listen", "It was a question.", share_turn=True)

    hidden = review(store, TESS, kept.id)
    assert hidden.turn_hidden and hidden.context is None and hidden.evidence is None
    # the trainer still gets what is needed to rule: the verdict, guidance and reason
    assert hidden.dispute.reason == "I named the stress." and hidden.dispute.guidance
    own = review(store, ALICE, kept.id)  # the trainee always sees her own words
    assert own.context is not None and own.context[-1]["text"] == TURNS[3][1]
    assert own.evidence == "That sounds really stressful"

    open_turn = review(store, TESS, shared.id)
    assert open_turn.context == [{"role": r, "text": t} for r, t in TURNS[:2]]
    assert open_turn.evidence == "When did it start exactly?"

    # a non-private session: trainers see the turn in context whether or not it was shared
    plain = open_dispute(store, BOB, graded(store, "bob"), 3, "validate", "Bob disagrees.")
    ctx = review(store, TESS, plain.id).context
    assert ctx is not None and [t["text"] for t in ctx] == [t for _, t in TURNS]


def test_single_user_mode_disputes_and_rules_its_own(store: SessionStore) -> None:
    sid = graded(store, None)
    d = open_dispute(store, LOCAL_USER, sid, 1, "listen", "It was a question.")
    assert d.trainee is None
    assert rule(store, LOCAL_USER, d.id, "uphold").status == "upheld"
    assert [x.id for x in list_disputes(store, LOCAL_USER, session_id=sid)] == [d.id]
    with pytest.raises(PermissionDenied):  # a trainee never reads the local user's
        get_dispute(store, ALICE, d.id)


# --- rulings as data --------------------------------------------------------------------------
def test_rulings_data_labels_the_ruled_verdict_only(store: SessionStore) -> None:
    sid = graded(store, "alice")
    up = open_dispute(store, ALICE, sid, 1, "listen", "Was it a real question?")
    over = open_dispute(store, ALICE, sid, 3, "validate", "I named the stress.")
    open_dispute(store, ALICE, sid, 1, "validate", "Still open.")
    private = graded(store, "bob", private=True)
    unshared = open_dispute(store, BOB, private, 1, "listen", "Mine, not shared.")
    rule(store, TESS, up.id, "uphold")
    rule(store, TESS, over.id, "overturn")
    rule(store, TESS, unshared.id, "overturn")

    data = rulings_data(store)
    assert data.skipped_private == 1  # a private turn never shared is never exported
    by_id = {r["id"]: r for r in data.records}
    assert sorted(by_id) == sorted([f"ruling-{up.id}", f"ruling-{over.id}"])
    first = by_id[f"ruling-{up.id}"]
    assert first["turns"] == [{"role": r, "text": t} for r, t in TURNS[:2]]
    assert first["labels"] == {"1": ["listen"]} and first["rated"] == {"1": ["listen"]}
    second = by_id[f"ruling-{over.id}"]
    assert second["labels"] == {"3": ["validate"]}  # overturned "not used"
    assert second["ruling"]["grader_used"] is False and second["ruling"]["decision"] == "overturned"

    left = rulings_data(store, exclude={f"ruling-{up.id}"})
    assert [r["id"] for r in left.records] == [f"ruling-{over.id}"]
    assert left.excluded == [f"ruling-{up.id}"]

    rates = data.dispute_rates
    # scored verdicts: listen 2 per session x 2 sessions; validate likewise; affirm never
    assert rates["listen"]["verdicts"] == 4 and rates["listen"]["disputes"] == 2
    assert rates["listen"]["dispute_rate"] == pytest.approx(0.5)
    assert rates["validate"]["disputes"] == 2 and rates["validate"]["ruled"] == 1
    assert rates["validate"]["overturn_rate"] == 1.0
    assert "affirm" not in rates


def test_verdicts_of_lists_only_scored_verdicts(store: SessionStore) -> None:
    rec = store.get_session(graded(store, "alice"))
    refs = verdicts_of(rec)
    assert [(v.turn_idx, v.turn, v.technique, v.used) for v in refs] == [
        (1, 1, "listen", True),
        (1, 1, "validate", False),
        (3, 2, "listen", False),
        (3, 2, "validate", False),
    ]
    assert refs[0].key == "1:listen" and refs[0].confidence == pytest.approx(0.93)
