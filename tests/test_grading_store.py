"""Grading: the guidance store (real Chroma, persistent, in a tmp data dir) and ``rapport ingest``.

``shared_guidance`` is also used by the other ``test_grading_*`` modules: ingesting the shipped
corpus embeds every chunk (about 12 s on two cores), so it is done once per test session, and
done through ``rapport ingest --shipped`` so that the CLI's first run is tested by it too.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from common.settings import Settings
from rubric.guidance import (
    GUIDANCE_DIR,
    TAGS,
    GuidanceError,
    GuidanceStore,
    IngestReport,
    read_document,
    split_front_matter,
)
from rubric.techniques import load_rubric

_SHARED: dict[str, Any] = {}
VALIDATING = "It's completely understandable that you're upset after being charged twice"


def shared_guidance(factory: pytest.TempPathFactory) -> tuple[Settings, GuidanceStore, str]:
    """A data dir with the shipped corpus ingested by ``rapport ingest --shipped`` (returned:
    its settings, a store on it, and that first run's output), shared by every grading module."""
    if "guidance" not in _SHARED:
        from cli import app

        data_dir = factory.mktemp("grading-shared-data")
        env = {"RAPPORT_DATA_DIR": str(data_dir), "RAPPORT_PROVIDER": "fake"}
        res = CliRunner().invoke(app, ["ingest", "--shipped"], env=env)
        assert res.exit_code == 0, res.output
        settings = Settings(data_dir=data_dir, provider="fake")
        _SHARED["guidance"] = (settings, GuidanceStore(settings), res.output)
    return _SHARED["guidance"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, GuidanceStore, str]:
    return shared_guidance(tmp_path_factory)


def _added(cli_output: str) -> dict[str, int]:
    """``added     guidance/x.md (3 chunks)`` lines of ``rapport ingest`` output."""
    out = {}
    for line in cli_output.splitlines():
        m = re.fullmatch(r"added\s+(\S+) \((\d+) chunks\)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def _fresh_store(tmp_path: Path) -> GuidanceStore:
    return GuidanceStore(Settings(data_dir=tmp_path / "data", provider="fake"))


def _all(store: GuidanceStore) -> dict[str, Any]:
    return store.collection.get(include=["documents", "metadatas"])  # type: ignore[no-any-return]


def _shipped_files() -> list[Path]:
    return sorted(f for f in GUIDANCE_DIR.rglob("*") if f.is_file())


# --- ingesting the shipped corpus -------------------------------------------------------


def test_shipped_corpus_ingests_every_file(shipped: Any) -> None:
    _, store, first_output = shipped
    files = _shipped_files()
    assert files
    added = _added(first_output)
    assert set(added) == {f"guidance/{f.relative_to(GUIDANCE_DIR)}" for f in files}
    assert all(n > 0 for n in added.values())
    for word in ("replaced", "skipped", "unchanged"):
        assert word not in first_output
    assert store.count() == sum(added.values())
    assert store.count() > len(files)  # some files are long enough to be split
    assert first_output.splitlines()[-1] == f"store now holds {store.count()} chunks"


def test_shipped_passages_carry_front_matter(shipped: Any) -> None:
    _, store, _ = shipped
    got = _all(store)
    for f in _shipped_files():
        meta, body = split_front_matter(f.read_text(encoding="utf-8"), f.name)
        assert {"id", "title", "tags"} <= set(meta), f
        assert set(meta["tags"]) <= set(TAGS), f
        chunks = [
            (doc, md)
            for doc, md in zip(got["documents"], got["metadatas"], strict=True)
            if md["passage_id"] == meta["id"]
        ]
        assert chunks, f"{meta['id']} not in the store"
        for doc, md in chunks:
            assert md["title"] == meta["title"]
            assert md["tags"].split(",") == meta["tags"]
            assert all(md[f"tag_{t}"] is True for t in meta["tags"])
            assert doc in body  # chunks are verbatim text of the body, front matter stripped
            assert "---" not in doc.splitlines()[0]
        p = store.get_passage(meta["id"])
        assert p is not None and p.title == meta["title"] and p.excerpt in body


def test_reingest_adds_nothing(shipped: Any) -> None:
    _, store, first_output = shipped
    before = store.count()
    report = store.ingest([GUIDANCE_DIR])
    assert isinstance(report, IngestReport)
    assert sorted(report.unchanged) == sorted(_added(first_output))
    assert report.added == {} and report.replaced == {} and report.skipped == {}
    assert report.chunks_written == 0
    assert store.count() == before


def test_progress_callback_sees_every_file(shipped: Any) -> None:
    _, store, first_output = shipped
    seen: list[str] = []
    store.ingest([GUIDANCE_DIR], progress=seen.append)
    assert sorted(seen) == sorted(_added(first_output))


def test_changed_file_replaces_its_chunks_without_leaving_stale_ones(tmp_path: Path) -> None:
    src = GUIDANCE_DIR / "validate-no-invalidating.md"
    docs = tmp_path / "docs"
    docs.mkdir()
    copy = docs / src.name
    shutil.copy(src, copy)
    store = _fresh_store(tmp_path)
    first = store.ingest([docs], root=tmp_path)
    key = f"docs/{src.name}"
    assert list(first.added) == [key]
    n_old = first.added[key]
    assert n_old >= 2, "pick a file long enough to need several chunks"
    old_texts = _all(store)["documents"]

    meta, _ = split_front_matter(copy.read_text(encoding="utf-8"), key)
    new_body = "Name the feeling first. Zebra-striped reassurance is our new house rule.\n"
    copy.write_text(
        "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + new_body, encoding="utf-8"
    )
    second = store.ingest([docs], root=tmp_path)
    assert second.replaced == {key: 1}
    assert not second.added and not second.unchanged
    got = _all(store)
    assert store.count() == 1
    assert got["documents"] == [new_body.strip()]
    assert not set(old_texts) & set(got["documents"])
    assert got["metadatas"][0]["passage_id"] == meta["id"]

    third = store.ingest([docs], root=tmp_path)
    assert third.unchanged == [key] and store.count() == 1


def test_unsupported_and_empty_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.csv").write_text("a,b\n1,2\n")
    (docs / "README").write_text("no suffix at all")
    (docs / "empty.txt").write_text("   \n\n")
    store = _fresh_store(tmp_path)
    report = store.ingest([docs], root=tmp_path)
    assert report.skipped == {
        "docs/notes.csv": "unsupported file type '.csv'",
        "docs/README": "unsupported file type '(none)'",
        "docs/empty.txt": "no text found",
    }
    assert not report.added and store.count() == 0


def _pdf(path: Path, text: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(path) as pdf:
        fig = plt.figure(figsize=(8.5, 11))
        fig.text(0.05, 0.5, text, fontsize=10)
        pdf.savefig(fig)
        plt.close(fig)


def test_txt_html_and_pdf_are_ingested(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.txt").write_text(
        "Refund desk notes\n\nAlways read the refund amount back to the customer before "
        "you process it, so they can correct any mistake.\n"
    )
    (docs / "escalation.html").write_text(
        "<html><head><style>.x{color:red}</style><script>alert('steal cookies')</script></head>"
        "<body><nav>Home | Policies</nav><h1>Escalation guide</h1>"
        "<p>When a customer asks for a manager, acknowledge the request and explain "
        "what the manager can do differently.</p>"
        "<script>document.write('tracking pixel')</script><footer>Copyright Acme</footer>"
        "</body></html>"
    )
    pdf_text = "Callback promise: give the customer a specific time window for the callback."
    _pdf(docs / "callbacks.pdf", pdf_text)
    assert pdf_text in read_document(docs / "callbacks.pdf")  # pypdf really extracts it

    store = _fresh_store(tmp_path)
    report = store.ingest([docs], root=tmp_path)
    assert set(report.added) == {"docs/refunds.txt", "docs/escalation.html", "docs/callbacks.pdf"}
    assert not report.skipped
    by_source: dict[str, str] = {}
    for doc, md in zip(*(_all(store)[k] for k in ("documents", "metadatas")), strict=True):
        by_source[md["source"]] = by_source.get(md["source"], "") + doc
    assert "read the refund amount back" in by_source["docs/refunds.txt"]
    html_text = by_source["docs/escalation.html"]
    assert "acknowledge the request" in html_text and "Escalation guide" in html_text
    for gone in ("alert", "steal cookies", "tracking pixel", "color:red", "Copyright", "Policies"):
        assert gone not in html_text
    assert pdf_text in by_source["docs/callbacks.pdf"]
    p = store.search("When will someone call me back?", k=1)[0]
    assert p.source == "docs/callbacks.pdf"


def test_playbook_without_front_matter_gets_inferred_tags(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "acme-playbook.md").write_text(
        "# Acme empathy playbook\n\n"
        "When a customer is upset, tell them their frustration makes sense. Say things like "
        "\"It's completely understandable you're annoyed after waiting three weeks\" and "
        '"Anyone would be worried if their card was charged twice."\n'
    )
    store = _fresh_store(tmp_path)
    store.ingest([docs], root=tmp_path)
    got = _all(store)
    assert len(got["ids"]) == 1
    md = got["metadatas"][0]
    tags = md["tags"].split(",")
    rubric = load_rubric()
    assert tags and set(tags) <= set(rubric.technique_ids + rubric.marker_ids)
    assert "validate" in tags
    assert all(md[f"tag_{t}"] is True for t in tags)
    assert md["passage_id"].startswith("acme-playbook-")  # unique per source file
    assert md["title"] == "Acme empathy playbook"
    found = store.search(VALIDATING, tag="validate", k=1)
    assert [p.id for p in found] == [md["passage_id"]]


@pytest.mark.parametrize(
    ("front", "field"),
    [
        ("id: acme\ntitle: Acme\ntags: validate\n", "tags"),
        ("id: acme\ntitle: Acme\ntags: [validate, 3]\n", "tags"),
        ("id: acme\nauthor: Bob\ntags: [validate]\n", "author"),
        ("id: Not A Slug\ntags: [validate]\n", "id"),
        ("id: acme\ntags: [validate\n", "front matter"),
        ("- just\n- a list\n", "front matter"),
    ],
    ids=["tags-string", "tags-not-str", "unknown-field", "bad-id", "bad-yaml", "not-mapping"],
)
def test_malformed_front_matter_names_file_and_field(
    tmp_path: Path, front: str, field: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bad-playbook.md").write_text(f"---\n{front}---\nSome guidance text.\n")
    (docs / "good.md").write_text("---\nid: good-one\ntags: [listen]\n---\nAsk open questions.\n")
    store = _fresh_store(tmp_path)
    report = store.ingest([docs], root=tmp_path)  # one bad file doesn't stop the others
    assert len(report.errors) == 1
    msg = report.errors[0]
    assert msg.startswith(f"docs/bad-playbook.md: {field}: "), msg
    assert list(report.added) == ["docs/good.md"]
    with pytest.raises(GuidanceError):
        split_front_matter((docs / "bad-playbook.md").read_text(), "docs/bad-playbook.md")


# --- retrieval --------------------------------------------------------------------------


def test_validating_sentence_retrieves_validate_guidance(shipped: Any) -> None:
    _, store, _ = shipped
    top = store.search(VALIDATING, k=3)
    assert len(top) == 3
    assert sum("validate" in p.tags for p in top) >= 2, [(p.id, p.tags) for p in top]
    scores = [p.score for p in top]
    assert scores == sorted(scores, reverse=True)
    assert all(p.id and p.title and p.source.startswith("guidance/") and p.excerpt for p in top)


@pytest.mark.parametrize("tag", ["cooperate", "listen", "affirm", "dismissive"])
def test_tag_filter_only_returns_that_tag(shipped: Any, tag: str) -> None:
    _, store, _ = shipped
    found = store.search(VALIDATING, tag=tag, k=3)
    assert found
    assert all(tag in p.tags for p in found), [(p.id, p.tags) for p in found]


def test_search_accepts_a_vector(shipped: Any) -> None:
    _, store, _ = shipped
    vec = store.embeddings.embed_query(VALIDATING)
    assert [p.id for p in store.search(vec, k=3)] == [p.id for p in store.search(VALIDATING, k=3)]


def test_get_passage_unknown_id_is_none(shipped: Any) -> None:
    _, store, _ = shipped
    assert store.get_passage("no-such-passage") is None


def test_same_file_name_in_two_folders_keeps_both(tmp_path: Path) -> None:
    for company in ("acme", "globex"):
        (tmp_path / company).mkdir()
        (tmp_path / company / "refunds.md").write_text(
            f"# {company} refunds\n\n{company} agents confirm the refund amount and date.\n"
        )
    store = _fresh_store(tmp_path)
    store.ingest([tmp_path / "acme", tmp_path / "globex"], root=tmp_path)
    assert store.count() == 2
    again = store.ingest([tmp_path / "acme", tmp_path / "globex"], root=tmp_path)
    assert sorted(again.unchanged) == ["acme/refunds.md", "globex/refunds.md"]


# --- rapport ingest ---------------------------------------------------------------------


def test_cli_ingest_shipped_twice(shipped: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first run is the one that built the shared store (see ``shared_guidance``)."""
    from cli import app

    settings, _, first_output = shipped
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(settings.data_dir))
    n_files = len(_shipped_files())
    added = _added(first_output)
    assert len(added) == n_files
    assert "unchanged" not in first_output
    total = sum(added.values())
    assert f"store now holds {total} chunks" in first_output

    runner = CliRunner()
    second = runner.invoke(app, ["ingest", "--shipped"])
    assert second.exit_code == 0, second.output
    assert f"unchanged {n_files} file(s)" in second.output
    assert "added" not in second.output and "replaced" not in second.output
    assert f"store now holds {total} chunks" in second.output
    assert (settings.data_dir / "chroma").is_dir()

    quiet = runner.invoke(app, ["ingest", "--shipped", "--quiet-if-unchanged"])
    assert quiet.exit_code == 0 and quiet.output.strip() == ""


def test_cli_ingest_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import app

    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "cli-data"))
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(tmp_path / "nonexistent")])
    assert res.exit_code == 2
    assert "not found" in res.output and "nonexistent" in res.output
    res = runner.invoke(app, ["ingest"])
    assert res.exit_code == 2 and "--shipped" in res.output
    assert not (tmp_path / "cli-data").exists()  # nothing was created on error


def test_cli_ingest_reports_malformed_front_matter_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import app

    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "cli-data"))
    bad = tmp_path / "bad.md"
    bad.write_text("---\nid: acme\ntags: validate\n---\nSome guidance text.\n")
    res = CliRunner().invoke(app, ["ingest", str(bad)])
    assert res.exit_code == 1
    assert not isinstance(res.exception, GuidanceError)  # handled, not raised
    assert "tags: must be a list of strings" in res.output
