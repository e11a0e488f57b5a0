"""Improving a draft's wording, never its facts: the embedded model's rewording, or a whole
draft from a capable configured model, with the same validation."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from sim.persona import Archetype
from training.masking import (
    find_pii,
    has_placeholder,
)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from common.settings import Settings

from training.persona_draft.checks import scrub, suggest_id, to_yaml, validate_draft
from training.persona_draft.extraction import extract
from training.persona_draft.records import Draft, DraftError, DraftSource, Phraser

# --- wording -----------------------------------------------------------------------------------
_REWORD_PROBLEM = (
    "Rewrite this as one or two plain sentences, in the third person, saying what went "
    "wrong for the customer. Do not add details. Reply with the sentences only."
)
_REWORD_OPENING = (
    "Rewrite this customer's first chat message so it reads naturally, in their voice, "
    "keeping what they said and how they feel. Do not add details. Reply with the message only."
)


def _acceptable(new: str | None, old: str) -> str | None:
    """A reworded text if it is usable: not empty, not much longer, no personal data, no
    new numbers, and not the model talking about the task."""
    if not new:
        return None
    new = new.strip().strip('"“”').strip()
    if not new or len(new) > 2 * len(old) + 40 or "\n\n" in new:
        return None
    if has_placeholder(new) or find_pii(new):
        return None
    if set(re.findall(r"\d+", new)) - set(re.findall(r"\d+", old)):
        return None
    if re.match(r"(?i)(sure|here is|here's|rewritten|as an ai|certainly)\b", new):
        return None
    return new


def phrase_with(model: BaseChatModel) -> Phraser:
    """A :data:`Phraser` over a chat model (the embedded one, or any other)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    def phrase(instruction: str, text: str) -> str | None:
        try:
            reply = model.invoke([SystemMessage(content=instruction), HumanMessage(content=text)])
        except Exception:  # wording is a nicety: the extracted text stands without it
            return None
        content = reply.content
        return content if isinstance(content, str) else None

    return phrase


def _phrase(data: dict[str, Any], phraser: Phraser) -> bool:
    changed = False
    problem = data["scenario"]["problem"]
    new = _acceptable(phraser(_REWORD_PROBLEM, problem), problem)
    if new:
        data["scenario"] = {**data["scenario"], "problem": new}
        changed = True
    opening = data["opening_line"]
    new = _acceptable(phraser(_REWORD_OPENING, opening), opening)
    if new:
        data["opening_line"] = new
        changed = True
    return changed


_LLM_PROMPT = """You turn a real customer-service chat into a practice persona for training agents.
Personal data in it is already masked as [NAME], [EMAIL], [PHONE] and so on: never write any of it
back, and invent nothing that identifies a real person. Keep the facts the customer gave.

Return one JSON object with exactly these keys: name, archetype (one of: $archetypes),
difficulty (easy, medium or hard), scenario {company, product, problem, channel: "chat"},
backstory, trainee_brief (what the agent knows beforehand; no hidden facts), opening_line (the
customer's first message, without masked data), speaking_style, emotional_baseline (0-10),
escalates_when (list), softens_when (list), hidden_facts (list of {id: a lowercase slug, fact,
topics: words an agent's question would touch}), resolution {description, satisfied_by (short
words an offer would contain), example_offer}.

A draft extracted by rules, to improve on:
$draft

The conversation:
$transcript"""


def _json_object(text: str) -> dict[str, Any]:
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise DraftError("the model's reply held no JSON object")
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise DraftError(f"the model's JSON didn't parse: {exc.msg}") from None
    if not isinstance(data, dict):
        raise DraftError("the model's reply was not a JSON object")
    return data


def llm_draft(
    model: BaseChatModel, turns: Sequence[Mapping[str, str]], extracted: Mapping[str, Any]
) -> dict[str, Any]:
    """The persona as a capable model writes it, from the masked conversation and the
    extracted draft; raises :class:`DraftError` if its answer isn't a valid persona."""
    from string import Template

    from langchain_core.messages import HumanMessage

    transcript = "\n".join(f"{t['role'].title()}: {t['text']}" for t in turns)
    prompt = Template(_LLM_PROMPT).substitute(
        archetypes=", ".join(a.value for a in Archetype),
        draft=json.dumps(extracted, ensure_ascii=False, indent=1),
        transcript=transcript[:12000],
    )
    try:
        reply = model.invoke([HumanMessage(content=prompt)])
    except Exception as exc:
        raise DraftError(f"the model could not be reached: {exc}") from None
    content = reply.content if isinstance(reply.content, str) else ""
    data = _json_object(content)
    validate_draft(data)
    return data


DraftMode = Literal["llm", "phrase", "extract"]


def draft_mode(settings: Settings) -> DraftMode:
    """``llm`` with a capable configured model (the OpenAI-compatible provider with the
    judge on, as for grading); ``phrase`` on the embedded model; ``extract`` otherwise."""
    if settings.provider == "openai" and settings.judge:
        return "llm"
    if settings.provider == "local":
        return "phrase"
    return "extract"


def draft_persona(
    turns: Sequence[Mapping[str, str]],
    feedback: Mapping[str, Any] | None = None,
    *,
    seed: str = "",
    mode: DraftMode = "extract",
    model: BaseChatModel | None = None,
    taken: Callable[[str], bool] = lambda _: False,
) -> Draft:
    """A validated draft persona from a masked conversation (see the module docstring)."""
    data = extract(turns, feedback, seed)
    data = scrub(data, str(data["name"]).split()[0])
    notes = [
        "Drafted from a real conversation: check every field, then Save draft, run the "
        "probe check and publish.",
    ]
    source: DraftSource = "extracted"
    if mode == "llm" and model is not None:
        try:
            data = llm_draft(model, turns, data)
            source = "llm"
        except DraftError as exc:
            notes.append(
                f"The configured model's draft was not used ({exc}); this one is extracted."
            )
    elif mode == "phrase" and model is not None and _phrase(data, phrase_with(model)):
        source = "extracted+phrased"
    if not data["hidden_facts"]:
        notes.append(
            "No hidden facts were found: add what the customer knows but only says when asked."
        )
    spec = validate_draft(data)
    return Draft(
        spec, to_yaml(spec), suggest_id(data, seed or spec.opening_line, taken), source, notes
    )


def draft_with_settings(
    settings: Settings,
    turns: Sequence[Mapping[str, str]],
    feedback: Mapping[str, Any] | None = None,
    *,
    seed: str = "",
    taken: Callable[[str], bool] = lambda _: False,
) -> Draft:
    """:func:`draft_persona` in the mode ``settings`` allow, with the configured model
    (``rapport import --draft-persona``); no model to be had means the extracted draft."""
    from providers.registry import ProviderError, get_chat_model

    mode = draft_mode(settings)
    model: BaseChatModel | None = None
    if mode != "extract":
        try:
            model = get_chat_model(settings)
        except (ProviderError, OSError, RuntimeError):
            mode = "extract"
    return draft_persona(turns, feedback, seed=seed, mode=mode, model=model, taken=taken)
