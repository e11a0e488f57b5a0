"""File helpers: ids and hashes of persona text, and writes that survive a crash."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sim.persona import SLUG
from training.persona_repo.records import InvalidId, NotFound


# --- helpers ---------------------------------------------------------------------------------
def text_sha(text: str) -> str:
    """The content version of a persona text, as :func:`sim.persona.parse_persona` computes it."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def normalise_text(text: str) -> str:
    """Unix newlines, as ``Path.read_text`` would give them back, so the sha is stable."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_id(persona_id: object) -> str:
    """Return ``persona_id`` if it is a valid slug, else raise :class:`InvalidId`."""
    if not isinstance(persona_id, str) or not SLUG.fullmatch(persona_id):
        raise InvalidId(
            f"{persona_id!r} is not a valid persona id: use 2-64 lowercase letters, digits, "
            "- or _, starting with a letter or digit"
        )
    return persona_id


def _check_n(n: object) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise NotFound(f"{n!r} is not a version number")
    return n


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temp file in the same folder, fsync, rename.

    On any failure the target is left as it was and the temp file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode())
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
