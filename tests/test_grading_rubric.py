"""Grading: the rubric as data (rubric/techniques.yaml) and its error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rubric.techniques import CORE_TECHNIQUES, RUBRIC_PATH, RubricError, load_rubric


def _shipped_data() -> dict[str, Any]:
    data = yaml.safe_load(RUBRIC_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _technique(data: dict[str, Any], tid: str) -> dict[str, Any]:
    return next(t for t in data["techniques"] if t["id"] == tid)


def _write(tmp_path: Path, data: dict[str, Any], name: str = "rubric.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(RubricError) as exc:
        load_rubric(path)
    problems = exc.value.problems
    assert problems, "RubricError without problems"
    assert str(exc.value) == "\n".join(problems)
    return problems


# --- the shipped rubric -----------------------------------------------------------------


def test_shipped_rubric_loads_with_core_techniques_and_dismissive_marker() -> None:
    rubric = load_rubric()
    assert rubric.version >= 1
    assert rubric.technique_ids == list(CORE_TECHNIQUES)
    assert rubric.marker_ids == ["dismissive"]
    assert rubric.get("dismissive").kind == "marker"
    with pytest.raises(KeyError):
        rubric.get("not-a-technique")


@pytest.mark.parametrize("tid", CORE_TECHNIQUES)
def test_core_techniques_have_enough_distinct_exemplars(tid: str) -> None:
    t = load_rubric().get(tid)
    assert t.kind == "technique"
    assert t.definition and t.label and t.guidance_tags
    assert len(t.positive) >= 40, f"{tid}: only {len(t.positive)} positive exemplars"
    assert len(t.negative) >= 40, f"{tid}: only {len(t.negative)} negative exemplars"
    # An exemplar that is both positive and negative would teach the classifier nothing.
    assert not set(t.positive) & set(t.negative)
    assert len(set(t.positive)) == len(t.positive)
    assert len(set(t.negative)) == len(t.negative)


@pytest.mark.parametrize("tid", CORE_TECHNIQUES)
def test_rewrite_templates_only_use_known_placeholders(tid: str) -> None:
    from string import Template

    t = load_rubric().get(tid)
    assert t.rewrite, f"{tid} has no rewrite template"
    names = {m.group("named") or m.group("braced") for m in Template.pattern.finditer(t.rewrite)}
    names.discard(None)
    assert names <= {"concern", "original"}, names
    assert "original" in names  # the trainee sees their own words in the rewrite


def test_shipped_rubric_round_trips_through_a_copy(tmp_path: Path) -> None:
    copy = _write(tmp_path, _shipped_data())
    assert load_rubric(copy) == load_rubric()


# --- errors name the file and the field -------------------------------------------------


def test_unknown_field_names_file_technique_id_and_field(tmp_path: Path) -> None:
    data = _shipped_data()
    _technique(data, "validate")["colour"] = "blue"
    path = _write(tmp_path, data)
    problems = _problems(path)
    assert problems == [f"{path}: techniques.validate.colour: Extra inputs are not permitted"]


def test_unknown_top_level_field(tmp_path: Path) -> None:
    data = _shipped_data()
    data["author"] = "someone"
    path = _write(tmp_path, data)
    assert _problems(path) == [f"{path}: author: Extra inputs are not permitted"]


def test_missing_definition_is_reported_by_technique_id(tmp_path: Path) -> None:
    data = _shipped_data()
    del _technique(data, "cooperate")["definition"]
    path = _write(tmp_path, data)
    problems = _problems(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: techniques.cooperate.definition: ")
    assert "Field required" in problems[0]


def test_too_few_exemplars(tmp_path: Path) -> None:
    data = _shipped_data()
    _technique(data, "affirm")["negative"] = ["No.", "Maybe.", "Fine."]
    path = _write(tmp_path, data)
    problems = _problems(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: techniques.affirm.negative: ")
    assert "at least 5" in problems[0]


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    data = _shipped_data()
    _technique(data, "listen")["positive"] = ["When?"]
    del _technique(data, "affirm")["label"]
    path = _write(tmp_path, data)
    problems = _problems(path)
    fields = sorted(p.split(": ")[1] for p in problems)
    assert fields == ["techniques.affirm.label", "techniques.listen.positive"]


def test_bad_slug_names_the_id_field(tmp_path: Path) -> None:
    data = _shipped_data()
    _technique(data, "listen")["id"] = "Listen Well"
    path = _write(tmp_path, data)
    problems = _problems(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: techniques.Listen Well.id: ")
    assert "slug" in problems[0]


def test_technique_without_id_falls_back_to_list_index(tmp_path: Path) -> None:
    data = _shipped_data()
    del data["techniques"][2]["id"]
    path = _write(tmp_path, data)
    assert _problems(path) == [f"{path}: techniques.2.id: Field required"]


def test_duplicate_ids_are_named(tmp_path: Path) -> None:
    data = _shipped_data()
    dup = dict(_technique(data, "listen"))
    data["techniques"].append(dup)
    path = _write(tmp_path, data)
    problems = _problems(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: ")
    assert "duplicate technique ids: listen" in problems[0]


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\ntechniques:\n  - id: listen\n    label: [unclosed\n")
    problems = _problems(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: (file): ")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    problems = _problems(path)
    assert problems[0].startswith(f"{path}: (file): ")


@pytest.mark.parametrize(
    "text", ["", "- just\n- a list\n", "version: 0\ntechniques: []\n"], ids=["empty", "list", "v0"]
)
def test_wrong_shapes_raise_rubric_error_not_a_crash(tmp_path: Path, text: str) -> None:
    path = tmp_path / "shape.yaml"
    path.write_text(text)
    for p in _problems(path):
        assert p.startswith(f"{path}: ")


def test_rubric_cli_validate_ok() -> None:
    from typer.testing import CliRunner

    from cli import app

    res = CliRunner().invoke(app, ["rubric", "validate"])
    assert res.exit_code == 0, res.output
    assert "listen, validate, cooperate, affirm, dismissive" in res.output
