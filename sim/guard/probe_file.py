"""The probe messages file, ``sim/guard/probes.yaml``: each message and the kind
:func:`sim.guard.probes.detect_probe` should give it."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.guard.probes import ProbeKind

PROBES_PATH = Path(__file__).resolve().parent / "probes.yaml"


class ProbeEntry(BaseModel):
    """One message in ``probes.yaml`` and the kind :func:`detect_probe` should give it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    text: str = Field(min_length=1)
    kind: ProbeKind


class ProbeFile(BaseModel):
    """The contents of ``probes.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probes: list[ProbeEntry] = Field(min_length=1)


class ProbeFileError(ValueError):
    """``probes.yaml`` could not be read or failed validation; the message names the file."""


def load_probes(path: Path = PROBES_PATH) -> list[tuple[str, ProbeKind]]:
    """Read and validate the probe messages file: ``[(text, expected kind), ...]``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeFileError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ProbeFileError(f"{path}: invalid YAML: {exc}") from None
    try:
        parsed = ProbeFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        )
        raise ProbeFileError(f"{path}: {problems}") from None
    return [(p.text, p.kind) for p in parsed.probes]
