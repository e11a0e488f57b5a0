"""The repository: reading, writing, publishing and listing versioned personas."""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from sim.persona import PERSONA_DIR, SLUG, Persona, PersonaError, parse_persona
from training.persona_repo.files import (
    _check_n,
    _fsync_dir,
    _now,
    _read,
    atomic_write,
    check_id,
    normalise_text,
    text_sha,
)
from training.persona_repo.records import (
    ARCHIVE_DIR,
    LOCK_NAME,
    SHIPPED_AUTHOR,
    VERSIONS_DIR,
    ConflictError,
    LockTimeout,
    NotFound,
    PersonaSummary,
    PublishRefused,
    RepoError,
    Status,
    VersionInfo,
)


# --- the repository --------------------------------------------------------------------------
class PersonaRepo:
    """Versioned persona files under ``root``; see the module docstring for the layout.

    Safe to share between threads and processes: reads need no lock (files are replaced
    atomically) and writes serialise on ``_versions/.lock``.
    """

    def __init__(self, root: Path = PERSONA_DIR, lock_timeout: float = 30.0) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout

    # paths: only ever built from ids that passed check_id
    @property
    def versions_root(self) -> Path:
        return self.root / VERSIONS_DIR

    @property
    def archive_root(self) -> Path:
        return self.root / ARCHIVE_DIR

    def _published_path(self, pid: str) -> Path:
        return self.root / f"{check_id(pid)}.yaml"

    def _archived_path(self, pid: str) -> Path:
        return self.archive_root / f"{check_id(pid)}.yaml"

    def _version_dir(self, pid: str) -> Path:
        return self.versions_root / check_id(pid)

    def _version_paths(self, pid: str, n: int) -> tuple[Path, Path]:
        d = self._version_dir(pid)
        n = _check_n(n)
        return d / f"{n}.yaml", d / f"{n}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the repository's exclusive write lock (across threads and processes)."""
        self.versions_root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.versions_root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise LockTimeout(
                            f"{self.root}: another save is still running; try again"
                        ) from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # --- reading -----------------------------------------------------------------------------
    def _version_numbers(self, pid: str) -> builtins.list[int]:
        d = self._version_dir(pid)
        if not d.is_dir():
            return []
        return sorted(
            int(p.stem) for p in d.glob("*.json") if p.stem.isdigit() and p.stem[0] != "0"
        )

    def _info(self, pid: str, n: int) -> VersionInfo:
        _, side = self._version_paths(pid, n)
        raw = _read(side)
        if raw is None:
            raise NotFound(f"{pid} has no version {n}")
        return VersionInfo.model_validate(json.loads(raw))

    def _live_text(self, pid: str) -> tuple[str, bool] | None:
        """(text, archived) of the published or archived file, if any."""
        text = _read(self._published_path(pid))
        if text is not None:
            return text, False
        text = _read(self._archived_path(pid))
        if text is not None:
            return text, True
        return None

    def _head(self, pid: str) -> tuple[str, str, int | None] | None:
        """(text, sha, version) of the newest text: the last version, else the live file."""
        numbers = self._version_numbers(pid)
        if numbers:
            n = numbers[-1]
            text = self.get_version(pid, n)
            return text, text_sha(text), n
        live = self._live_text(pid)
        if live is None:
            return None
        return live[0], text_sha(live[0]), None

    def exists(self, persona_id: str) -> bool:
        """Is there a persona with this id (published, draft or archived)?"""
        return self._head(check_id(persona_id)) is not None

    def is_archived(self, persona_id: str) -> bool:
        pid = check_id(persona_id)
        return not self._published_path(pid).exists() and self._archived_path(pid).exists()

    def get_text(self, persona_id: str) -> str:
        """The newest text, unparsed (use it to open a file that no longer validates)."""
        head = self._head(check_id(persona_id))
        if head is None:
            raise NotFound(f"no persona '{persona_id}'")
        return head[0]

    def get(self, persona_id: str) -> tuple[str, Persona]:
        """The newest text (last saved version, else the published file) and its parse.

        ``persona.version`` is the sha to pass as ``save_draft(..., base_sha=...)``.
        Raises :class:`NotFound`, or :class:`sim.persona.PersonaError` if the text is invalid.
        """
        pid = check_id(persona_id)
        text = self.get_text(pid)
        return text, parse_persona(text, pid, self._source(pid))

    def get_published(self, persona_id: str) -> tuple[str, Persona] | None:
        """The live text (published or archived file) and its parse; None if never published."""
        pid = check_id(persona_id)
        live = self._live_text(pid)
        if live is None:
            return None
        return live[0], parse_persona(live[0], pid, self._source(pid))

    def head_sha(self, persona_id: str) -> str | None:
        """The sha an editor must hold to save; None if the persona doesn't exist."""
        head = self._head(check_id(persona_id))
        return None if head is None else head[1]

    def versions(self, persona_id: str) -> builtins.list[VersionInfo]:
        """Saved versions, oldest first; empty for a shipped persona never saved here."""
        pid = check_id(persona_id)
        infos = [self._info(pid, n) for n in self._version_numbers(pid)]
        if not infos and self._live_text(pid) is None:
            raise NotFound(f"no persona '{pid}'")
        live = self._live_text(pid)
        if live is None:
            return infos
        live_sha = text_sha(live[0])
        matches = [i for i in infos if i.sha == live_sha]
        if not matches:
            return infos
        # the most recently published match, else the newest match
        pick = max(matches, key=lambda i: (i.published_at or "", i.published, i.version))
        return [i.model_copy(update={"live": i.version == pick.version}) for i in infos]

    def get_version(self, persona_id: str, n: int) -> str:
        """The text of version ``n``."""
        pid = check_id(persona_id)
        text_path, side = self._version_paths(pid, n)
        text = _read(text_path)
        if text is None or not side.exists():
            raise NotFound(f"{pid} has no version {n}")
        return text

    def _source(self, pid: str) -> str:
        return f"{pid}.yaml"

    def validate(self, text: str, persona_id: str) -> builtins.list[str]:
        """``file: field: problem`` lines for this text (as ``rapport personas validate``
        prints them, with ``<id>.yaml`` as the file); empty if it is a valid persona."""
        source = f"{persona_id}.yaml" if isinstance(persona_id, str) else "(persona)"
        if not isinstance(persona_id, str) or not SLUG.fullmatch(persona_id):
            return [f"{source}: id: '{persona_id}' is not a lowercase slug"]
        try:
            parse_persona(normalise_text(text), persona_id, source)
        except PersonaError as exc:
            return list(exc.problems)
        return []

    # --- writing -----------------------------------------------------------------------------
    def _write_version(self, pid: str, text: str, author: str, note: str) -> VersionInfo:
        """Store ``text`` as the next version; caller holds the lock."""
        numbers = self._version_numbers(pid)
        n = (numbers[-1] if numbers else 0) + 1
        text_path, side = self._version_paths(pid, n)
        info = VersionInfo(version=n, sha=text_sha(text), saved_at=_now(), author=author, note=note)
        atomic_write(text_path, text)
        atomic_write(side, json.dumps(info.sidecar(), indent=2, ensure_ascii=False) + "\n")
        return info

    def _record_shipped(self, pid: str) -> None:
        """History starts from what shipped: a live file with no versions becomes version 1."""
        if self._version_numbers(pid):
            return
        live = self._live_text(pid)
        if live is None:
            return
        text = normalise_text(live[0])
        n = 1
        text_path, side = self._version_paths(pid, n)
        info = VersionInfo(
            version=n,
            sha=text_sha(text),
            saved_at=_now(),
            author=SHIPPED_AUTHOR,
            note="recorded from the published file",
            published=True,
        )
        atomic_write(text_path, text)
        atomic_write(side, json.dumps(info.sidecar(), indent=2, ensure_ascii=False) + "\n")

    @staticmethod
    def _check_author(author: str) -> str:
        if not isinstance(author, str) or not author.strip():
            raise RepoError("an author is required")
        return author.strip()

    def _validated(self, pid: str, text: str) -> str:
        text = normalise_text(text)
        problems = self.validate(text, pid)
        if problems:
            raise PersonaError(problems)
        return text

    def save_draft(
        self,
        persona_id: str,
        text: str,
        author: str,
        base_sha: str | None,
        note: str = "",
    ) -> VersionInfo:
        """Validate ``text`` and store it as the next version (not published).

        ``base_sha`` is the sha the editor opened (``get(id)[1].version``); None creates a
        new persona. Raises :class:`ConflictError` if the newest version is no longer
        ``base_sha`` (or the id is taken, or ``base_sha`` names a persona that doesn't
        exist), :class:`sim.persona.PersonaError` if the text is invalid, :class:`InvalidId`.
        """
        pid = check_id(persona_id)
        author = self._check_author(author)
        text = self._validated(pid, text)
        with self._locked():
            head = self._head(pid)
            if head is None:
                if base_sha is not None:
                    raise ConflictError(
                        f"{pid} changed since you opened it: it no longer exists. "
                        "Save it again as a new persona."
                    )
            elif base_sha is None:
                raise ConflictError(
                    f"a persona with the id '{pid}' already exists; pick another id or open it"
                )
            elif base_sha != head[1]:
                raise ConflictError(self._conflict_message(pid, head[2]))
            self._record_shipped(pid)
            return self._write_version(pid, text, author, note)

    def _conflict_message(self, pid: str, n: int | None) -> str:
        who = ""
        if n is not None:
            with contextlib.suppress(RepoError, ValueError, OSError):
                i = self._info(pid, n)
                who = f" (version {n}, saved by {i.author} at {i.saved_at})"
        return (
            f"{pid} changed since you opened it{who}. Reload it, reapply your edits and save again."
        )

    def publish(
        self,
        persona_id: str,
        n: int,
        author: str,
        check_passed: bool,
        override_reason: str | None = None,
    ) -> VersionInfo:
        """Make version ``n`` the live ``root/<id>.yaml`` (atomic replace).

        Refused (:class:`PublishRefused`) unless ``check_passed`` or a non-empty
        ``override_reason`` is given (stored in the sidecar), or while the persona is archived.
        """
        pid = check_id(persona_id)
        author = self._check_author(author)
        reason = override_reason.strip() if isinstance(override_reason, str) else ""
        if not check_passed and not reason:
            raise PublishRefused(
                f"{pid} v{n}: the persona check has not passed; run it, or write a reason "
                "for publishing anyway"
            )
        with self._locked():
            text = self.get_version(pid, n)
            info = self._info(pid, n)
            if self.is_archived(pid):
                raise PublishRefused(f"{pid} is archived; unarchive it before publishing")
            problems = self.validate(text, pid)
            if problems:
                raise PersonaError(problems)
            atomic_write(self._published_path(pid), text)
            info = info.model_copy(
                update={
                    "published": True,
                    "check_passed": bool(check_passed),
                    "override_reason": None if check_passed else reason,
                    "published_at": _now(),
                    "published_by": author,
                }
            )
            _, side = self._version_paths(pid, n)
            atomic_write(side, json.dumps(info.sidecar(), indent=2, ensure_ascii=False) + "\n")
        return info.model_copy(update={"live": True})

    def restore(self, persona_id: str, n: int, author: str) -> VersionInfo:
        """A new version whose text equals version ``n`` (history is never rewritten)."""
        pid = check_id(persona_id)
        author = self._check_author(author)
        with self._locked():
            text = self.get_version(pid, n)
            return self._write_version(pid, text, author, f"restored from version {n}")

    def clone(self, src_id: str, new_id: str, author: str) -> VersionInfo:
        """A new persona ``new_id`` whose first version is ``src_id``'s newest text."""
        src, new = check_id(src_id), check_id(new_id)
        text = self.get_text(src)
        return self.save_draft(new, text, author, base_sha=None, note=f"cloned from {src}")

    def archive(self, persona_id: str) -> None:
        """Move the published file to ``_archive/<id>.yaml``; the app stops offering it."""
        pid = check_id(persona_id)
        with self._locked():
            src = self._published_path(pid)
            if not src.exists():
                if self._archived_path(pid).exists():
                    return
                raise NotFound(f"{pid} is not published, so there is nothing to archive")
            self.archive_root.mkdir(parents=True, exist_ok=True)
            os.replace(src, self._archived_path(pid))
            _fsync_dir(self.archive_root)
            _fsync_dir(self.root)

    def unarchive(self, persona_id: str) -> None:
        """Move ``_archive/<id>.yaml`` back to ``<id>.yaml``."""
        pid = check_id(persona_id)
        with self._locked():
            src, dest = self._archived_path(pid), self._published_path(pid)
            if not src.exists():
                if dest.exists():
                    return
                raise NotFound(f"{pid} is not archived")
            if dest.exists():
                raise ConflictError(f"{pid} is published and archived at once; fix by hand")
            os.replace(src, dest)
            _fsync_dir(self.root)
            _fsync_dir(self.archive_root)

    def import_yaml(
        self, text: str, persona_id: str, author: str, note: str = "imported"
    ) -> VersionInfo:
        """Add a persona from YAML text as a new, unpublished persona (the id must be free)."""
        return self.save_draft(persona_id, text, author, base_sha=None, note=note)

    def export_yaml(self, persona_id: str, version: int | None = None) -> str:
        """The YAML to share: version ``version`` if given, else the published (or archived)
        text, else the newest draft."""
        pid = check_id(persona_id)
        if version is not None:
            return self.get_version(pid, version)
        live = self._live_text(pid)
        return live[0] if live is not None else self.get_text(pid)

    # --- listing (defined last: the method name shadows the builtin in the class body) -------
    def ids(self) -> builtins.list[str]:
        """Every persona id: published, archived or draft-only."""
        found: set[str] = set()
        for d, pattern in ((self.root, "*.yaml"), (self.archive_root, "*.yaml")):
            if d.is_dir():
                found.update(p.stem for p in d.glob(pattern) if SLUG.fullmatch(p.stem))
        if self.versions_root.is_dir():
            found.update(
                p.name
                for p in self.versions_root.iterdir()
                if p.is_dir() and SLUG.fullmatch(p.name) and any(p.glob("*.json"))
            )
        return sorted(found)

    def summary(self, persona_id: str) -> PersonaSummary:
        pid = check_id(persona_id)
        head = self._head(pid)
        if head is None:
            raise NotFound(f"no persona '{pid}'")
        text, sha, latest = head
        live = self._live_text(pid)
        status: Status = "draft" if live is None else ("archived" if live[1] else "published")
        published_sha = None if live is None else text_sha(live[0])
        fields: dict[str, object] = {}
        problems: builtins.list[str] = []
        try:
            p = parse_persona(text, pid, self._source(pid))
            fields = {
                "name": p.name,
                "archetype": p.archetype.value,
                "difficulty": p.difficulty,
                "company": p.scenario.company,
                "product": p.scenario.product,
                "problem": p.scenario.problem,
            }
        except PersonaError as exc:
            problems = list(exc.problems)
        return PersonaSummary.model_validate(
            {
                "id": pid,
                "status": status,
                "sha": sha,
                "published_sha": published_sha,
                "latest_version": latest,
                "unpublished_changes": published_sha is not None and published_sha != sha,
                "problems": problems,
                **fields,
            }
        )

    def list(
        self,
        query: str = "",
        archetype: str | None = None,
        difficulty: str | None = None,
        include_archived: bool = False,
    ) -> builtins.list[PersonaSummary]:
        """Personas sorted by id, drafts included, archived ones only if asked.

        ``query``: every whitespace-separated word must appear (case-insensitive) in the
        name, id, company or problem. ``archetype`` / ``difficulty``: exact values.
        """
        words = query.lower().split()
        out: builtins.list[PersonaSummary] = []
        for pid in self.ids():
            s = self.summary(pid)
            if s.status == "archived" and not include_archived:
                continue
            if archetype is not None and s.archetype != archetype:
                continue
            if difficulty is not None and s.difficulty != difficulty:
                continue
            hay = " ".join([s.name, s.id, s.company, s.problem]).lower()
            if any(w not in hay for w in words):
                continue
            out.append(s)
        return out
