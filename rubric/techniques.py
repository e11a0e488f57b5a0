"""The rubric as data: ``rubric/techniques.yaml`` validated by pydantic.

Trainers add a technique or exemplar sentences by editing the YAML; no code changes.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.techniques import CORE_TECHNIQUES as CORE_TECHNIQUES  # re-exported
from common.techniques import RUBRIC_PATH

_SLUG = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


class Technique(BaseModel):
    """One rubric item: a technique the agent should use, or a marker they should avoid."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(description="Slug used in grades and the `rapport grade` format.")
    label: str = Field(min_length=1, description="Human-readable name.")
    kind: Literal["technique", "marker"] = Field(
        "technique",
        description="'technique' is something to use; 'marker' is something to avoid "
        "(e.g. dismissive language).",
    )
    definition: str = Field(min_length=1, description="What counts, in one paragraph.")
    guidance_tags: list[str] = Field(
        min_length=1, description="Tags of guidance passages that back a verdict on this item."
    )
    cues: list[str] = Field(
        default_factory=list,
        description="Lowercase phrases (plain substrings, not patterns) that often signal this "
        "item, e.g. 'just to confirm'. One feature among several; never decisive alone.",
    )
    rewrite: str | None = Field(
        None,
        description="Template for a suggested rewrite when this technique was missed. "
        "$concern is the customer's last point in the agent's voice; $original is the agent's "
        "turn as written.",
    )
    positive: list[str] = Field(min_length=5, description="Agent sentences that DO show this item.")
    negative: list[str] = Field(
        min_length=5,
        description="Agent sentences that do NOT show it, especially near-misses.",
    )

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError("must be a lowercase slug (letters, digits, _)")
        return v


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, description="Bump when exemplars change, so grades can be traced.")
    techniques: list[Technique] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Rubric:
        ids = [t.id for t in self.techniques]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate technique ids: {', '.join(dupes)}")
        return self

    def get(self, technique_id: str) -> Technique:
        for t in self.techniques:
            if t.id == technique_id:
                return t
        raise KeyError(technique_id)

    @property
    def technique_ids(self) -> list[str]:
        return [t.id for t in self.techniques if t.kind == "technique"]

    @property
    def marker_ids(self) -> list[str]:
        return [t.id for t in self.techniques if t.kind == "marker"]


class RubricError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def load_rubric(path: Path = RUBRIC_PATH) -> Rubric:
    """Load and validate the rubric; errors read ``file: field: problem``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RubricError([f"{path}: (file): {exc}"]) from None
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = list(e["loc"])
            # Name the technique by id rather than list index where we can.
            if (
                len(loc) >= 2
                and loc[0] == "techniques"
                and isinstance(loc[1], int)
                and isinstance(data, dict)
            ):
                with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
                    loc[1] = data["techniques"][loc[1]].get("id", loc[1])
            problems.append(f"{path}: {'.'.join(str(p) for p in loc) or '(file)'}: {e['msg']}")
        raise RubricError(problems) from None
