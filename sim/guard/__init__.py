"""The customer's character guard: deterministic checks around the actor LLM.

The trainee's message is *data*. :func:`detect_probe` spots messages that try to re-instruct
the simulated customer or pull it off topic; :func:`check_reply` lists every reason a cleaned
customer reply can't be shown (out of character, talks about its instructions, leaks a locked
hidden fact, or goes along with the probe); :func:`repair` drops offending sentences when that
is enough; :func:`in_character_line` is the last-resort line and :func:`probe_directive` tells
the actor how to react to a probe. Everything here is regex and token logic: no model calls.

Modules: ``probes`` (spotting probes), ``checks`` (checking and repairing a reply),
``fallback`` (fallback lines and probe directives), ``probe_file`` (the probe messages file).
"""

from sim.guard.checks import (
    Violation,
    ViolationKind,
    check_reply,
    public_text,
    repair,
    split_sentences,
)
from sim.guard.fallback import fallback_lines, in_character_line, probe_directive, spoken_product
from sim.guard.probe_file import PROBES_PATH, ProbeEntry, ProbeFile, ProbeFileError, load_probes
from sim.guard.probes import ONE_WORD, Probe, ProbeKind, detect_probe, embedded_demand, rating_key

GUARD_VERSION = 1

__all__ = [
    "GUARD_VERSION",
    "ONE_WORD",
    "PROBES_PATH",
    "Probe",
    "ProbeEntry",
    "ProbeFile",
    "ProbeFileError",
    "ProbeKind",
    "Violation",
    "ViolationKind",
    "check_reply",
    "detect_probe",
    "embedded_demand",
    "fallback_lines",
    "in_character_line",
    "load_probes",
    "probe_directive",
    "public_text",
    "rating_key",
    "repair",
    "split_sentences",
    "spoken_product",
]
