"""Scripted agent lines for a persona: templates that name ``$name`` (the customer's first
name), ``$product``, ``$company`` and ``$offer`` (the persona's ideal resolution sentence).

The probe check (``sim/probe_check.py``) and the evaluation suites (``eval/``) play such
lines against a persona; they live here so the simulation depends on nothing in ``eval``.
"""

from __future__ import annotations

from string import Template

from sim.persona import Persona


def example_offer(persona: Persona) -> str:
    """The persona's ideal resolution sentence, or one made from its ``satisfied_by`` steps."""
    res = persona.resolution
    if res.example_offer:
        return str(res.example_offer)
    steps = list(res.satisfied_by[:2])
    return f"Here is what I'll do: I'll arrange the {' and the '.join(steps)} for you today."


def fill(template: str, persona: Persona) -> str:
    """``template`` with the persona's names and offer put in (unknown ``$words`` stay)."""
    return Template(template).safe_substitute(
        offer=example_offer(persona),
        name=persona.name.split()[0],
        company=persona.scenario.company,
        product=persona.scenario.product,
    )
