from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import training.persona_repo.repo as repo_mod  # where PersonaRepo looks up atomic_write
from sim.persona import PERSONA_DIR, PersonaError, load_personas
from training.persona_repo import (
    ConflictError,
    InvalidId,
    LockTimeout,
    NotFound,
    PersonaRepo,
    PublishRefused,
    text_sha,
)

SHIPPED = ["confused_energy_bill", "irate_broadband_outage", "grieving_cloud_photos"]
BILL = "confused_energy_bill"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    d = tmp_path / "personas"
    d.mkdir()
    for pid in SHIPPED:
        shutil.copy(PERSONA_DIR / f"{pid}.yaml", d / f"{pid}.yaml")
    return d


@pytest.fixture
def repo(root: Path) -> PersonaRepo:
    return PersonaRepo(root)


def shipped_text(pid: str = BILL) -> str:
    return (PERSONA_DIR / f"{pid}.yaml").read_text(encoding="utf-8")


def renamed(text: str, name: str) -> str:
    first = text.splitlines()[0]
    assert first.startswith("name: ")
    return text.replace(first, f"name: {name}", 1)


def files_under(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()}


# --- versions --------------------------------------------------------------------------------
def test_saving_twice_keeps_two_versions(repo: PersonaRepo) -> None:
    t1 = renamed(shipped_text(), "Ada One")
    t2 = renamed(shipped_text(), "Ada Two")
    v1 = repo.save_draft("new_persona", t1, "alice", base_sha=None, note="first")
    v2 = repo.save_draft("new_persona", t2, "bob", base_sha=v1.sha)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.sha == text_sha(t1) and v2.sha == text_sha(t2)
    infos = repo.versions("new_persona")
    assert [(i.version, i.author, i.note) for i in infos] == [
        (1, "alice", "first"),
        (2, "bob", ""),
    ]
    assert repo.get_version("new_persona", 1) == t1
    assert repo.get_version("new_persona", 2) == t2
    text, persona = repo.get("new_persona")
    assert text == t2 and persona.name == "Ada Two" and persona.version == v2.sha
    # the sidecar is plain JSON with the documented keys
    side = json.loads((repo.root / "_versions" / "new_persona" / "2.json").read_text())
    assert {"version", "sha", "saved_at", "author", "note", "published", "override_reason"} <= set(
        side
    )
    assert side["version"] == 2 and side["sha"] == v2.sha and side["published"] is False
    # a draft is not published: the app's loader doesn't see it, and the shipped ones still load
    assert not (repo.root / "new_persona.yaml").exists()
    assert set(load_personas(repo.root)) == set(SHIPPED)


def test_first_save_of_a_shipped_persona_records_what_shipped(repo: PersonaRepo) -> None:
    original, persona = repo.get(BILL)
    assert original == shipped_text() and repo.versions(BILL) == []
    assert persona.version == load_personas(repo.root)[BILL].version
    edited = renamed(original, "Doreen A.")
    info = repo.save_draft(BILL, edited, "alice", base_sha=persona.version)
    assert info.version == 2
    v1, v2 = repo.versions(BILL)
    assert repo.get_version(BILL, 1) == original
    assert v1.author == "shipped" and v1.published and v1.live and v1.sha == persona.version
    assert not v2.live and not v2.published
    # the published file is untouched until publish
    assert (repo.root / f"{BILL}.yaml").read_text() == original
    s = repo.summary(BILL)
    assert s.status == "published" and s.unpublished_changes and s.latest_version == 2


def test_restore_makes_a_new_version_with_the_old_text(repo: PersonaRepo) -> None:
    t1, t2 = renamed(shipped_text(), "Ada One"), renamed(shipped_text(), "Ada Two")
    v1 = repo.save_draft("ada", t1, "alice", None)
    repo.save_draft("ada", t2, "alice", v1.sha)
    v3 = repo.restore("ada", 1, "bob")
    assert v3.version == 3 and v3.sha == v1.sha and "restored from version 1" in v3.note
    assert repo.get_version("ada", 3) == t1 and repo.get("ada")[0] == t1
    assert [i.version for i in repo.versions("ada")] == [1, 2, 3]
    with pytest.raises(NotFound):
        repo.restore("ada", 9, "bob")


def test_clone_copies_the_newest_text(repo: PersonaRepo) -> None:
    info = repo.clone(BILL, "bill_copy", "alice")
    assert info.version == 1 and "cloned from" in info.note
    assert repo.get("bill_copy")[0] == shipped_text()
    with pytest.raises(ConflictError):
        repo.clone(BILL, "irate_broadband_outage", "alice")


# --- conflicts -------------------------------------------------------------------------------
def test_second_editor_with_the_same_base_gets_a_conflict(repo: PersonaRepo) -> None:
    _, opened = repo.get(BILL)
    base = opened.version
    repo.save_draft(BILL, renamed(shipped_text(), "Editor One"), "one", base)
    before = files_under(repo.root)
    with pytest.raises(ConflictError, match="changed since you opened it") as exc:
        repo.save_draft(BILL, renamed(shipped_text(), "Editor Two"), "two", base)
    assert "saved by one" in str(exc.value)
    assert files_under(repo.root) == before
    assert repo.get(BILL)[1].name == "Editor One"


def test_creating_an_existing_id_is_a_conflict(repo: PersonaRepo) -> None:
    with pytest.raises(ConflictError, match="already exists"):
        repo.save_draft(BILL, shipped_text(), "alice", base_sha=None)
    with pytest.raises(ConflictError, match="already exists"):
        repo.import_yaml(shipped_text(), BILL, "alice")
    # a base sha for a persona that doesn't exist (deleted meanwhile) is a conflict too
    with pytest.raises(ConflictError, match="changed since you opened it"):
        repo.save_draft("ghost", shipped_text(), "alice", base_sha="abc123abc123")


def test_racing_threads_only_one_wins(repo: PersonaRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    real = repo_mod.atomic_write

    def slow(path: Path, text: str) -> None:
        time.sleep(0.05)  # widen the window between the compare and the write
        real(path, text)

    monkeypatch.setattr(repo_mod, "atomic_write", slow)
    base = repo.get(BILL)[1].version
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def editor(name: str) -> None:
        barrier.wait()
        try:
            results.append(repo.save_draft(BILL, renamed(shipped_text(), name), name, base))
        except ConflictError as exc:
            results.append(exc)

    threads = [threading.Thread(target=editor, args=(n,)) for n in ("Thread A", "Thread B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(type(r).__name__ for r in results) == ["ConflictError", "VersionInfo"]
    assert [i.version for i in repo.versions(BILL)] == [1, 2]


def _save_in_process(root: str, base: str, name: str, ready: Any, out: Any) -> None:
    """A second process: an editor who opened the persona at ``base``."""
    repo = PersonaRepo(Path(root))
    text = renamed(shipped_text(), name)
    ready.set()
    try:
        info = repo.save_draft(BILL, text, name, base)
        out.put((name, f"saved v{info.version}"))
    except ConflictError:
        out.put((name, "conflict"))


def test_racing_processes_only_one_wins(repo: PersonaRepo) -> None:
    ctx = multiprocessing.get_context("spawn")
    base = repo.get(BILL)[1].version
    out = ctx.Queue()
    readies = [ctx.Event(), ctx.Event()]
    with repo._locked():  # both processes queue up on the lock while the parent holds it
        procs = [
            ctx.Process(target=_save_in_process, args=(str(repo.root), base, n, ev, out))
            for n, ev in zip(("Proc A", "Proc B"), readies, strict=True)
        ]
        for p in procs:
            p.start()
        for ev in readies:
            assert ev.wait(60)
        time.sleep(0.3)
        assert repo.versions(BILL) == []  # nobody got past the lock
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(results.values()) == ["conflict", "saved v2"]
    winner = next(n for n, r in results.items() if r == "saved v2")
    assert repo.get(BILL)[1].name == winner


def test_a_held_lock_times_out(root: Path) -> None:
    holder, waiter = PersonaRepo(root), PersonaRepo(root, lock_timeout=0.1)
    base = holder.get(BILL)[1].version
    with holder._locked(), pytest.raises(LockTimeout):
        waiter.save_draft(BILL, renamed(shipped_text(), "Late"), "late", base)


# --- ids -------------------------------------------------------------------------------------
BAD_IDS = ["../x", "a/b", "/etc/passwd", "X", "", "..", "a", "Abc", "ab\n", "_versions", "a b"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_refused_before_any_path_is_built(
    repo: PersonaRepo, tmp_path: Path, bad: str
) -> None:
    before = files_under(tmp_path)
    calls = [
        lambda: repo.get(bad),
        lambda: repo.get_text(bad),
        lambda: repo.versions(bad),
        lambda: repo.get_version(bad, 1),
        lambda: repo.save_draft(bad, shipped_text(), "alice", None),
        lambda: repo.import_yaml(shipped_text(), bad, "alice"),
        lambda: repo.publish(bad, 1, "alice", check_passed=True),
        lambda: repo.restore(bad, 1, "alice"),
        lambda: repo.clone(BILL, bad, "alice"),
        lambda: repo.clone(bad, "fine_id", "alice"),
        lambda: repo.archive(bad),
        lambda: repo.unarchive(bad),
        lambda: repo.export_yaml(bad),
        lambda: repo.summary(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidId):
            call()
    assert files_under(tmp_path) == before
    assert repo.validate(shipped_text(), bad) == [
        f"{bad}.yaml: id: '{bad}' is not a lowercase slug"
    ]


def test_unknown_ids_and_versions(repo: PersonaRepo) -> None:
    with pytest.raises(NotFound):
        repo.get("nobody_here")
    with pytest.raises(NotFound):
        repo.versions("nobody_here")
    with pytest.raises(NotFound):
        repo.get_version(BILL, 1)  # shipped, never saved: no history yet
    with pytest.raises(NotFound):
        repo.get_version(BILL, 0)


# --- validation ------------------------------------------------------------------------------
def test_validate_gives_the_cli_messages_and_save_refuses_invalid_text(repo: PersonaRepo) -> None:
    bad = shipped_text().replace("emotional_baseline: 4", "emotional_baseline: loud")
    assert repo.validate(bad, "my_draft") == [
        "my_draft.yaml: emotional_baseline: Input should be a valid integer, unable to parse "
        "string as an integer"
    ]
    assert repo.validate(shipped_text(), "my_draft") == []
    assert repo.validate(shipped_text() + "\nvibe: extra\n", "my_draft") == [
        "my_draft.yaml: vibe: Extra inputs are not permitted"
    ]
    with pytest.raises(PersonaError):
        repo.save_draft("my_draft", bad, "alice", None)
    assert not (repo.root / "_versions" / "my_draft").exists()


def test_windows_newlines_are_stored_as_the_loader_reads_them(repo: PersonaRepo) -> None:
    info = repo.save_draft("crlf_one", shipped_text().replace("\n", "\r\n"), "alice", None)
    repo.publish("crlf_one", 1, "alice", check_passed=True)
    assert load_personas(repo.root)["crlf_one"].version == info.sha


# --- publishing ------------------------------------------------------------------------------
def test_publish_needs_a_check_or_a_written_reason(repo: PersonaRepo) -> None:
    base = repo.get(BILL)[1].version
    v2 = repo.save_draft(BILL, renamed(shipped_text(), "Doreen B."), "alice", base)
    published = repo.root / f"{BILL}.yaml"
    for reason in (None, "", "   "):
        with pytest.raises(PublishRefused, match="check"):
            repo.publish(BILL, v2.version, "alice", check_passed=False, override_reason=reason)
    assert published.read_text() == shipped_text()

    info = repo.publish(
        BILL, v2.version, "alice", check_passed=False, override_reason="demo tomorrow, model down"
    )
    assert info.live and info.published and info.override_reason == "demo tomorrow, model down"
    assert published.read_text() == repo.get_version(BILL, 2)
    side = json.loads((repo.root / "_versions" / BILL / "2.json").read_text())
    assert side["published"] is True and side["override_reason"] == "demo tomorrow, model down"
    assert side["published_by"] == "alice" and side["check_passed"] is False
    assert load_personas(repo.root)[BILL].name == "Doreen B."
    assert [i.live for i in repo.versions(BILL)] == [False, True]
    assert not repo.summary(BILL).unpublished_changes

    # publishing with a passed check needs no reason; the old version can go live again
    again = repo.publish(BILL, 1, "bob", check_passed=True)
    assert again.override_reason is None and again.check_passed is True
    assert published.read_text() == shipped_text()
    assert [i.live for i in repo.versions(BILL)] == [True, False]
    with pytest.raises(NotFound):
        repo.publish(BILL, 7, "bob", check_passed=True)


def test_a_failed_write_leaves_the_published_file_whole(
    repo: PersonaRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = repo.get(BILL)[1].version
    v2 = repo.save_draft(BILL, renamed(shipped_text(), "Half Written"), "alice", base)
    published = repo.root / f"{BILL}.yaml"
    before_bytes = published.read_bytes()
    before_files = files_under(repo.root)

    def boom(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="No space"):
        repo.publish(BILL, v2.version, "alice", check_passed=True)
    monkeypatch.undo()
    assert published.read_bytes() == before_bytes
    assert files_under(repo.root) == before_files  # no temp file left behind
    assert not any(".tmp" in f for f in files_under(repo.root))
    assert not repo.versions(BILL)[1].published


# --- archive, import, export, list -----------------------------------------------------------
def test_archive_hides_from_list_and_loader(repo: PersonaRepo) -> None:
    repo.archive("grieving_cloud_photos")
    assert "grieving_cloud_photos" not in [s.id for s in repo.list()]
    assert "grieving_cloud_photos" not in load_personas(repo.root)
    archived = {s.id: s for s in repo.list(include_archived=True)}
    assert archived["grieving_cloud_photos"].status == "archived"
    assert repo.is_archived("grieving_cloud_photos")
    # still editable, but not publishable while archived
    base = repo.get("grieving_cloud_photos")[1].version
    info = repo.save_draft(
        "grieving_cloud_photos", shipped_text("grieving_cloud_photos") + "\n", "a", base
    )
    with pytest.raises(PublishRefused, match="archived"):
        repo.publish("grieving_cloud_photos", info.version, "a", check_passed=True)
    repo.unarchive("grieving_cloud_photos")
    assert "grieving_cloud_photos" in load_personas(repo.root)
    assert repo.summary("grieving_cloud_photos").status == "published"
    with pytest.raises(NotFound):
        repo.archive("never_published")


def test_import_export_round_trip(repo: PersonaRepo) -> None:
    exported = repo.export_yaml(BILL)
    assert exported == shipped_text()
    info = repo.import_yaml(exported, "bill_imported", "alice")
    assert info.version == 1 and info.note == "imported"
    assert repo.export_yaml("bill_imported") == exported  # a draft exports its newest text
    text, persona = repo.get("bill_imported")
    assert text == exported and persona.version == load_personas(repo.root)[BILL].version
    repo.publish("bill_imported", 1, "alice", check_passed=True)
    assert (repo.root / "bill_imported.yaml").read_text() == exported
    assert repo.export_yaml("bill_imported", version=1) == exported


def test_search_and_filters(repo: PersonaRepo) -> None:
    repo.import_yaml(renamed(shipped_text(), "Zelda Draftworth"), "zelda_draft", "alice")
    ids = lambda rows: [s.id for s in rows]  # noqa: E731
    assert ids(repo.list()) == sorted([*SHIPPED, "zelda_draft"])
    assert ids(repo.list("doreen")) == [BILL]  # name
    assert ids(repo.list("BRIGHTWATER")) == sorted([BILL, "zelda_draft"])  # company
    assert ids(repo.list("broadband")) == ["irate_broadband_outage"]  # id
    assert ids(repo.list("486.72")) == sorted([BILL, "zelda_draft"])  # problem
    assert ids(repo.list("zelda brightwater")) == ["zelda_draft"]  # every word must match
    assert ids(repo.list("no such thing")) == []
    assert ids(repo.list(archetype="irate")) == ["irate_broadband_outage"]
    assert ids(repo.list(difficulty="easy")) == sorted([BILL, "zelda_draft"])
    assert ids(repo.list("doreen", archetype="irate")) == []
    drafts = [s for s in repo.list() if s.status == "draft"]
    assert ids(drafts) == ["zelda_draft"] and drafts[0].latest_version == 1
    assert drafts[0].published_sha is None and drafts[0].name == "Zelda Draftworth"


def test_a_broken_published_file_is_listed_with_its_problems(repo: PersonaRepo) -> None:
    (repo.root / "broken_one.yaml").write_text("name: [unclosed\n")
    s = repo.summary("broken_one")
    assert s.problems and s.problems[0].startswith("broken_one.yaml: line")
    assert "broken_one" in [x.id for x in repo.list()]
    with pytest.raises(PersonaError):
        repo.get("broken_one")
    assert repo.get_text("broken_one") == "name: [unclosed\n"
