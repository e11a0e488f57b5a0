"""Which techniques there are: read from the rubric's data file, ``rubric/techniques.yaml``.

The rubric package validates that file in full (``rubric.techniques.load_rubric``); this module
only reads the ids, so the simulation can know the techniques without importing the rubric.
A technique added to the YAML shows up here with no code change.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

RUBRIC_PATH = Path(__file__).resolve().parent.parent / "rubric" / "techniques.yaml"
"""The shipped rubric file."""

CORE_TECHNIQUES = ("listen", "validate", "cooperate", "affirm")
"""The four techniques the app was built around. The shipped rubric holds exactly these (a
test checks it), and the director has tuned mood effects for them; any other technique in the
rubric is still graded and passed to the director, with a neutral effect."""


@lru_cache(maxsize=8)
def _items(path: Path) -> tuple[tuple[str, str], ...]:
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as f:
        data = yaml.load(f, Loader=loader)
    return tuple((str(t["id"]), str(t.get("kind", "technique"))) for t in data["techniques"])


def technique_ids(path: Path = RUBRIC_PATH) -> tuple[str, ...]:
    """The ids of the rubric's techniques (kind ``technique``), in file order."""
    return tuple(i for i, kind in _items(path) if kind == "technique")


def marker_ids(path: Path = RUBRIC_PATH) -> tuple[str, ...]:
    """The ids of the rubric's markers (things to avoid, kind ``marker``), in file order."""
    return tuple(i for i, kind in _items(path) if kind == "marker")


TECHNIQUES: tuple[str, ...] = technique_ids()
"""The shipped rubric's technique ids, in file order."""

__all__ = ["CORE_TECHNIQUES", "RUBRIC_PATH", "TECHNIQUES", "marker_ids", "technique_ids"]
