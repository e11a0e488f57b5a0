"""A versioned persona repository: the storage behind the Persona Studio.

Layout under ``root`` (normally ``personas/``)::

    root/<id>.yaml                    the published persona (what the app and ``load_personas`` read)
    root/_versions/<id>/<n>.yaml      every saved version, n = 1, 2, 3 ...
    root/_versions/<id>/<n>.json      its sidecar (see :class:`VersionInfo`)
    root/_versions/.lock              the repository's write lock (``fcntl.flock``)
    root/_archive/<id>.yaml           an archived persona's published file

Names starting with ``_`` are ignored by :func:`sim.persona.load_personas`, so the shipped
personas and the loader keep working unchanged.

How editing works, for a UI on top of this:

1. ``text, persona = repo.get(id)`` opens the newest text; keep ``persona.version`` (its sha).
2. ``repo.save_draft(id, new_text, author, base_sha=persona.version)`` stores a new version.
   If someone else saved in between, it raises :class:`ConflictError` and stores nothing.
   ``base_sha=None`` creates a new persona.
3. ``repo.publish(id, n, author, check_passed=...)`` makes version ``n`` the live file. It needs
   a passed ``rapport personas check`` (:func:`sim.probe_check.check_draft`) or a written
   override reason.

Every write goes to a temporary file in the same folder, is fsynced and then renamed over the
target (``os.replace``), so a reader never sees half a file. A version's sidecar is written
after its YAML: a version exists once its sidecar does. The base-sha compare and every write
run under an exclusive lock on ``_versions/.lock``, so two processes can't both win a race.

Ids are checked against :data:`sim.persona.SLUG` before any path is built from them.

Modules: ``records`` (names, errors and the version records), ``files`` (ids, hashes and
durable writes) and ``repo`` (:class:`PersonaRepo`).
"""

from training.persona_repo.files import atomic_write, check_id, normalise_text, text_sha
from training.persona_repo.records import (
    ARCHIVE_DIR,
    LOCK_NAME,
    SHIPPED_AUTHOR,
    VERSIONS_DIR,
    ConflictError,
    InvalidId,
    LockTimeout,
    NotFound,
    PersonaSummary,
    PublishRefused,
    RepoError,
    Status,
    VersionInfo,
)
from training.persona_repo.repo import PersonaRepo

__all__ = [
    "ARCHIVE_DIR",
    "LOCK_NAME",
    "SHIPPED_AUTHOR",
    "VERSIONS_DIR",
    "ConflictError",
    "InvalidId",
    "LockTimeout",
    "NotFound",
    "PersonaRepo",
    "PersonaSummary",
    "PublishRefused",
    "RepoError",
    "Status",
    "VersionInfo",
    "atomic_write",
    "check_id",
    "normalise_text",
    "text_sha",
]
