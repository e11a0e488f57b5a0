from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.persona import (
    PERSONA_DIR,
    SCHEMA_PATH,
    Archetype,
    PersonaError,
    json_schema,
    load_persona_file,
    load_personas,
    parse_persona,
    persona_paths,
)

GOOD = (PERSONA_DIR / "confused_energy_bill.yaml").read_text()


@pytest.mark.parametrize("path", persona_paths(), ids=lambda p: p.stem)
def test_every_shipped_persona_loads(path: Path) -> None:
    p = load_persona_file(path)
    assert p.id == path.stem
    assert p.opening_line and p.trainee_brief
    # the trainee's card must never reveal a hidden fact
    for fact in p.hidden_facts:
        assert fact.fact not in p.trainee_brief
        assert fact.fact not in p.opening_line


def test_library_spans_required_archetypes_and_industries() -> None:
    ps = load_personas()
    assert len(ps) >= 8
    kinds = {p.archetype for p in ps.values()}
    assert {Archetype.irate, Archetype.grieving, Archetype.confused} <= kinds
    assert len({p.scenario.company for p in ps.values()}) == len(ps)


def test_schema_file_is_in_sync_with_the_model() -> None:
    assert json.loads(SCHEMA_PATH.read_text()) == json_schema()


def _problems(text: str, pid: str = "broken") -> list[str]:
    with pytest.raises(PersonaError) as exc:
        parse_persona(text, pid, "personas/broken.yaml")
    return exc.value.problems


def test_unknown_field_is_named() -> None:
    probs = _problems(GOOD + "\nfavourite_colour: blue\n")
    assert probs == ["personas/broken.yaml: favourite_colour: Extra inputs are not permitted"]


def _without(key: str) -> str:
    import yaml

    data = yaml.safe_load(GOOD)
    del data[key]
    return str(yaml.safe_dump(data))


def test_missing_opening_line_is_named() -> None:
    assert _problems(_without("opening_line")) == [
        "personas/broken.yaml: opening_line: Field required"
    ]


def test_wrong_type_names_the_nested_field() -> None:
    import yaml

    data = yaml.safe_load(GOOD)
    data["scenario"]["channel"] = "carrier pigeon"
    data["hidden_facts"] = "not a list"
    probs = _problems(yaml.safe_dump(data))
    assert any(p.startswith("personas/broken.yaml: scenario.channel:") for p in probs)
    assert any(p.startswith("personas/broken.yaml: hidden_facts:") for p in probs)


def test_out_of_range_baseline() -> None:
    import yaml

    data = yaml.safe_load(GOOD)
    data["emotional_baseline"] = 14
    probs = _problems(yaml.safe_dump(data))
    assert probs == [
        "personas/broken.yaml: emotional_baseline: Input should be less than or equal to 10"
    ]


def test_invalid_yaml_names_the_line() -> None:
    probs = _problems("name: Ann\nscenario: [unclosed\n")
    assert len(probs) == 1
    assert probs[0].startswith("personas/broken.yaml: line ")
    assert "invalid YAML" in probs[0]


def test_yaml_tags_are_not_executed() -> None:
    probs = _problems("name: !!python/object/apply:os.system ['echo pwned']\n")
    assert "invalid YAML" in probs[0]


def test_non_slug_id_rejected() -> None:
    assert _problems(GOOD, "../etc/passwd")[0].startswith("personas/broken.yaml: id:")


def test_load_personas_reports_every_broken_file(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(GOOD)
    (tmp_path / "bad_one.yaml").write_text(GOOD + "\nextra: 1\n")
    (tmp_path / "bad_two.yaml").write_text("- a list\n")
    with pytest.raises(PersonaError) as exc:
        load_personas(tmp_path)
    text = str(exc.value)
    assert "bad_one.yaml: extra:" in text
    assert "bad_two.yaml: (file): expected a mapping" in text


def test_version_changes_with_content() -> None:
    a = parse_persona(GOOD, "x1", "a")
    b = parse_persona(GOOD + "\n", "x1", "b")
    assert a.version != b.version
