"""The repository's names, errors and records (a version, a persona's summary)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

VERSIONS_DIR = "_versions"
ARCHIVE_DIR = "_archive"
LOCK_NAME = ".lock"
SHIPPED_AUTHOR = "shipped"

Status = Literal["published", "draft", "archived"]


# --- errors ----------------------------------------------------------------------------------
class RepoError(Exception):
    """Base class for persona repository errors; the message is fit to show a trainer."""


class InvalidId(RepoError, ValueError):
    """The id is not a lowercase slug (``sim.persona.SLUG``); nothing was touched."""


class NotFound(RepoError, LookupError):
    """No persona (or no such version) with that id."""

    def __str__(self) -> str:  # LookupError would quote the message like a dict key
        return str(self.args[0]) if self.args else ""


class ConflictError(RepoError):
    """Someone saved a newer version since the editor opened this persona, or the id is taken."""


class PublishRefused(RepoError):
    """Publishing needs a passed check or a written override reason (or the persona is archived)."""


class LockTimeout(RepoError):
    """Another writer held the repository lock for too long."""


# --- records ---------------------------------------------------------------------------------
class VersionInfo(BaseModel):
    """One saved version: the contents of ``_versions/<id>/<n>.json`` plus ``live``.

    ``published`` means this version has been published at least once; ``live`` (computed,
    not stored) means it is the text in ``root/<id>.yaml`` right now (or in the archive, for
    an archived persona).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = Field(ge=1)
    sha: str = Field(description="sha256 prefix of the text, the same as Persona.version.")
    saved_at: str = Field(description="ISO 8601, UTC.")
    author: str
    note: str = ""
    published: bool = False
    override_reason: str | None = Field(
        None, description="Why it was published without a passed check (last publish)."
    )
    check_passed: bool | None = Field(None, description="Whether the check passed (last publish).")
    published_at: str | None = None
    published_by: str | None = None
    live: bool = Field(False, description="Computed: this version is the published file now.")

    def sidecar(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude={"live"})


class PersonaSummary(BaseModel):
    """One row of :meth:`PersonaRepo.list`. Display fields come from the newest text."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: Status = Field(description="published, draft (never published) or archived.")
    name: str = ""
    archetype: str | None = None
    difficulty: str | None = None
    company: str = ""
    product: str = ""
    problem: str = ""
    sha: str = Field(description="sha of the newest text: pass it as save_draft's base_sha.")
    published_sha: str | None = Field(None, description="sha of the published (or archived) file.")
    latest_version: int | None = Field(None, description="None: no saved history yet.")
    unpublished_changes: bool = Field(
        False, description="The newest text differs from the published one."
    )
    problems: list[str] = Field(
        default_factory=list, description="Validation problems of the newest text, if any."
    )
