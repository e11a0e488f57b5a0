"""Embedded-model faults: missing, corrupt or damaged files and too little memory give a
clear error that says what to run, and the app refuses to start half-working."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from providers import local as local_llm
from providers.local import LlamaCppChat, LocalModelError, check_memory
from providers.model_files import (
    DEFAULT_MODEL,
    ModelFileError,
    PartedModel,
    known_digest,
    prepare,
    verify,
)
from tests.conftest import ROOT, free_port


def tiny_model(tmp_path: Path, payload: bytes) -> PartedModel:
    """A two-part 'model' whose parts live in fake installed packages on sys.path."""
    for n, chunk in enumerate((payload[:5], payload[5:]), 1):
        data = tmp_path / "site" / f"tinytest_part{n}" / "data"
        data.mkdir(parents=True)
        (tmp_path / "site" / f"tinytest_part{n}" / "__init__.py").write_text("")
        (data / f"part{n:02d}.bin").write_bytes(chunk)
    return PartedModel(
        name="tiny",
        filename="tiny.gguf",
        package_prefix="tinytest_part",
        parts=2,
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        install_hint="pip install tinytest",
    )


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


def test_corrupt_joined_file_is_rejoined(tmp_path: Path, on_path: Path) -> None:
    model = tiny_model(tmp_path, b"hello world, this is a model")
    out = prepare(tmp_path / "models", model)
    assert out.read_bytes() == b"hello world, this is a model"
    out.write_bytes(b"garbage garbage garbage garbage!")  # same-ish size, new mtime
    with pytest.raises(ModelFileError, match="corrupt"):
        verify(out, model)
    again = prepare(tmp_path / "models", model)  # heals from the installed parts
    assert again.read_bytes() == b"hello world, this is a model"


def test_known_digest_survives_rejoining_but_not_a_change(tmp_path: Path, on_path: Path) -> None:
    """The persona-state cache is keyed by this digest: a re-assembled model keeps its states."""
    payload = b"hello world, this is a model"
    model = tiny_model(tmp_path, payload)
    a = prepare(tmp_path / "models-a", model)
    b = prepare(tmp_path / "models-b", model)
    assert known_digest(a) == known_digest(b) == hashlib.sha256(payload).hexdigest()
    a.write_bytes(b"hello world, this is a mode!")
    assert known_digest(a) is None  # changed since it was verified: no digest to trust
    assert known_digest(tmp_path / "nowhere.gguf") is None


def test_damaged_parts_say_what_to_reinstall(tmp_path: Path, on_path: Path) -> None:
    model = tiny_model(tmp_path, b"hello world, this is a model")
    part = next((tmp_path / "site" / "tinytest_part2" / "data").iterdir())
    part.write_bytes(b"XXXX")
    with pytest.raises(ModelFileError, match="pip install tinytest"):
        prepare(tmp_path / "models", model)
    assert not (tmp_path / "models" / "tiny.gguf").exists()  # nothing half-written kept


def test_missing_part_package_is_named(tmp_path: Path, on_path: Path) -> None:
    model = tiny_model(tmp_path, b"hello world, this is a model")
    bigger = PartedModel(**{**model.__dict__, "parts": 3})
    with pytest.raises(ModelFileError, match=r"'tinytest-part3' is missing"):
        prepare(tmp_path / "models", bigger)


def test_too_little_memory_is_refused_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"0" * 1024)
    monkeypatch.setattr(local_llm, "available_memory", lambda: 100 << 20)  # 100 MiB free
    with pytest.raises(LocalModelError, match="Not enough free memory"):
        check_memory(f)
    monkeypatch.setattr(local_llm, "available_memory", lambda: 64 << 30)
    check_memory(f)  # plenty: no error


def test_a_garbage_gguf_fails_at_load_with_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "broken.gguf"
    f.write_bytes(b"GGUF" + os.urandom(4096))
    with pytest.raises(LocalModelError, match=r"could not load|corrupt"):
        LlamaCppChat(model_path=f, n_ctx=256).load()


@pytest.mark.server
@pytest.mark.parametrize("kind", ["missing", "garbage"])
def test_app_refuses_to_start_with_a_bad_model(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "model.gguf"
    if kind == "garbage":
        path.write_bytes(b"GGUF" + os.urandom(4096))
    env = {
        **os.environ,
        "RAPPORT_DATA_DIR": str(tmp_path / "data"),
        "RAPPORT_PROVIDER": "local",
        "RAPPORT_MODEL_PATH": str(path),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error:" in proc.stderr
    assert (
        ("does not exist" in proc.stderr)
        if kind == "missing"
        else ("could not load" in proc.stderr)
    )
    assert "Rapport is running" not in proc.stdout


def test_default_model_record_is_pinned() -> None:
    assert len(DEFAULT_MODEL.sha256) == 64 and DEFAULT_MODEL.size > 10**9
