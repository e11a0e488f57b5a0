"""A non-editable install works away from the checkout.

The wheel is built from this tree and installed into a folder of its own (its dependencies
come from the test environment); every command then runs from a directory outside the
repository, so the personas, guidance, rubric model and probes can only be found where the
wheel put them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.servers import rapport_app

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheel")
    target = tmp_path_factory.mktemp("site")
    # built from a clean copy: a build/ folder left in the checkout would leak stale modules
    # into the wheel, and the build must not write into the checkout
    src = tmp_path_factory.mktemp("src") / "rapport"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "tests", "docs"
    )
    shutil.copytree(ROOT, src, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("rapport-*.whl")
    install = [*pip, "install", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    return target


@pytest.fixture
def env(installed: Path, tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    out.update(
        PYTHONPATH=str(installed),  # ahead of the checkout's editable install
        RAPPORT_PROVIDER="fake",
        RAPPORT_DATA_DIR=str(tmp_path / "data"),
        GRADIO_ANALYTICS_ENABLED="False",
    )
    return out


def rapport(
    installed: Path, env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed / "bin" / "rapport"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_installed_code_and_data_are_used_not_the_checkout(
    installed: Path, env: dict[str, str], tmp_path: Path
) -> None:
    probe = (
        "import json, app, cli, sim.persona, sim.guard, rubric.guidance, rubric.turn_model;"
        "print(json.dumps([app.__file__, cli.__file__, str(sim.persona.PERSONA_DIR),"
        " str(sim.guard.PROBES_PATH), str(rubric.guidance.GUIDANCE_DIR),"
        " str(rubric.turn_model.MODEL_DIR)]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    for path in map(Path, json.loads(res.stdout)):
        assert path.is_relative_to(installed) and path.exists(), path
    assert len(list((installed / "personas").glob("*.yaml"))) == len(
        list((ROOT / "personas").glob("*.yaml"))
    )


def test_installed_commands_find_personas_guidance_and_rubric(
    installed: Path, env: dict[str, str], tmp_path: Path
) -> None:
    listed = rapport(installed, env, tmp_path, "personas", "list")
    assert listed.returncode == 0, listed.stderr
    for yaml in (ROOT / "personas").glob("*.yaml"):
        assert yaml.stem in listed.stdout
    ingest = rapport(installed, env, tmp_path, "ingest", "--shipped")
    assert ingest.returncode == 0, ingest.stderr
    stable = ROOT / "tests" / "data" / "stable"
    out = tmp_path / "graded.jsonl"
    graded = rapport(
        installed, env, tmp_path, "grade", str(stable / "grade_in.jsonl"), "-o", str(out)
    )
    assert graded.returncode == 0, graded.stderr
    # the same verdicts, evidence and citations as from the checkout, byte for byte
    assert out.read_bytes() == (stable / "grade_out.jsonl").read_bytes()


@pytest.fixture
def served(installed: Path, env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "serve.log"
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["It has been down since Monday."]), encoding="utf-8")
    env = {**env, "RAPPORT_FAKE_SCRIPT": str(script)}
    rapport = [str(installed / "bin" / "rapport")]
    with rapport_app(env, log, rapport=rapport, cwd=tmp_path) as url:
        yield url


def test_installed_rapport_serve_offers_the_shipped_customers(served: str) -> None:
    config = httpx.get(served + "config", timeout=30).json()
    text = json.dumps(config)
    assert "Gareth" in text or "irate_broadband_outage" in text  # the persona picker is filled
