"""Checks on a draft: the persona schema, personal data, YAML and a suggested id."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from sim.persona import SLUG, PersonaSpec
from training.masking import (
    find_pii,
    has_placeholder,
    mask_text,
)

if TYPE_CHECKING:
    pass

from training.persona_draft.records import DraftError
from training.persona_draft.text import _clip, _slug, unmask_words


# --- checks ----------------------------------------------------------------------------------
def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def personal_data_in(data: Mapping[str, Any]) -> list[str]:
    """Every text field of a draft that still holds masked placeholders or personal data
    (beyond the draft's own invented name)."""
    own = set(str(data.get("name", "")).split())
    bad: list[str] = []
    for s in _strings(data):
        if has_placeholder(s) or any(
            sp.kind != "name" or s[sp.start : sp.end] not in own for sp in find_pii(s)
        ):
            bad.append(_clip(s, 12))
    return bad


def scrub(value: Any, first_name: str) -> Any:
    """Every text in a draft masked once more and put into a customer's words: a last pass
    for personal data that only shows once pieces of the conversation are joined."""
    if isinstance(value, str):
        return unmask_words(mask_text(value, ()).text, first_name) or value
    if isinstance(value, Mapping):
        return {
            k: v
            if k in ("name", "id", "archetype", "difficulty", "channel")
            else scrub(v, first_name)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub(v, first_name) for v in value]
    return value


def validate_draft(data: Mapping[str, Any]) -> PersonaSpec:
    """The draft as a :class:`PersonaSpec`, or :class:`DraftError` naming each problem."""
    try:
        spec = PersonaSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise DraftError(
            "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        ) from None
    leaks = personal_data_in(spec.model_dump(mode="json"))
    if leaks:
        raise DraftError("personal data or masked placeholders left in: " + "; ".join(leaks))
    return spec


def to_yaml(spec: PersonaSpec) -> str:
    """The draft as persona YAML; optional lists left empty are left out (hidden facts stay,
    as a place for the trainer to add them)."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data = {k: v for k, v in data.items() if v != [] or k == "hidden_facts"}
    if not data.get("hidden_facts"):
        data["hidden_facts"] = []
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=88)


def suggest_id(
    data: Mapping[str, Any], seed: str, taken: Callable[[str], bool] = lambda _: False
) -> str:
    """A free persona id like ``real_irate_broadband_3f2a``."""
    base = f"real_{data.get('archetype', 'other')}_{_slug(str(data['scenario']['product']))}"[:56]
    digest = hashlib.sha256(seed.encode()).hexdigest()
    for n in range(0, 40, 4):
        pid = f"{base}_{digest[n : n + 4]}"
        if SLUG.match(pid) and not taken(pid):
            return pid
    raise DraftError("No free persona id: type one in the New id box.")
