"""A draft persona from an imported real conversation, for "Practise this customer".

The draft is built from the masked conversation and its feedback by deterministic
extraction, using the same signals the simulation runs on:

- **scenario**: the company (``training.masking.company_names``), the product the customer
  talks about most, and the problem from their first message, in the third person;
- **opening line**: the customer's first message; masked data in it is rewritten into
  words a customer would say ("my phone number", the draft's own first name);
- **hidden facts**: what the customer said only in answer to a question, where a question
  is what the director counts as listening (``sim.director.listening_clauses``); the
  question's words become the fact's topics, so the same question unlocks it in practice;
- **emotional baseline** and **archetype**: from the customer's own words (feeling words,
  exclamation marks, capitals) in their first messages;
- **escalates_when / softens_when**: agent turns after which the customer's language got
  calmer or more upset, described by what the grader saw in them (the techniques used,
  the dismissive marker) with the agent's own words;
- **resolution**: the steps the agent offered in the turns the grader marked cooperative.

Two ways to improve the wording, never the facts: on the embedded model a :data:`Phraser`
may reword the problem and the opening line (each result checked, else the extracted text
stays); with a capable configured model, :func:`llm_draft` asks it for the whole persona,
validated against the same schema and checked for personal data, falling back to the
extracted draft if it fails either. The trainer finishes the draft in the Persona Studio;
it is published through the usual probe check.

Modules: ``records`` (the draft and its errors), ``language`` (distress and archetype from the
customer's words), ``text`` (small text helpers), ``extraction`` (the draft from the
conversation), ``checks`` (schema and personal-data checks, YAML), ``wording`` (rewording
and the LLM draft).
"""

from training.persona_draft.checks import (
    personal_data_in,
    scrub,
    suggest_id,
    to_yaml,
    validate_draft,
)
from training.persona_draft.extraction import extract
from training.persona_draft.language import archetype_of, distress
from training.persona_draft.records import Draft, DraftError, DraftSource, Phraser
from training.persona_draft.text import DRAFT_NAMES, sentences, third_person, unmask_words
from training.persona_draft.wording import (
    DraftMode,
    draft_mode,
    draft_persona,
    draft_with_settings,
    llm_draft,
    phrase_with,
)

__all__ = [
    "DRAFT_NAMES",
    "Draft",
    "DraftError",
    "DraftMode",
    "DraftSource",
    "Phraser",
    "archetype_of",
    "distress",
    "draft_mode",
    "draft_persona",
    "draft_with_settings",
    "extract",
    "llm_draft",
    "personal_data_in",
    "phrase_with",
    "scrub",
    "sentences",
    "suggest_id",
    "third_person",
    "to_yaml",
    "unmask_words",
    "validate_draft",
]
