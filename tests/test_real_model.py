"""The embedded model really generating (not skipped in CI)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from common.turns import Turn, TurnMeta
from providers.local import LlamaCppChat, to_openai_messages
from sim.persona import Persona, load_personas
from sim.prompt import build_messages
from sim.simulator import CustomerTurn

pytestmark = pytest.mark.real_model
PERSONAS = load_personas()
ROLE_TOKENS = re.compile(r"<\|[^|]+\|>|\bAgent:|\bCustomer:")


@pytest.fixture(scope="module")
def qwen(default_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> LlamaCppChat:
    return LlamaCppChat(
        model_path=default_model_path,
        temperature=0.7,
        max_tokens=80,
        seed=7,
        prefix_dir=tmp_path_factory.mktemp("prefix-states"),
    )


@pytest.mark.parametrize("persona_id", ["irate_broadband_outage", "grieving_cloud_photos"])
def test_default_model_replies_in_character(qwen: LlamaCppChat, persona_id: str) -> None:
    p = PERSONAS[persona_id]
    agent = "I'm sorry to hear that. Could you tell me what happened?"
    turn = CustomerTurn(qwen, p, [Turn("customer", p.opening_line), Turn("agent", agent)])
    partials = list(turn)
    reply = turn.reply
    assert reply is not None
    # streamed a sentence at a time (each piece checked by the guard before it is shown)
    assert partials and all(b.startswith(a) for a, b in itertools.pairwise(partials))
    assert reply.text.strip() and not reply.fallback
    assert reply.text.strip() != agent
    assert not ROLE_TOKENS.search(reply.text)
    assert "how can i help" not in reply.text.lower()


def after_first_reply(model: LlamaCppChat) -> tuple[Persona, list[Turn]]:
    """Doreen's chat after her first reply, ending with the agent's second message."""
    p = PERSONAS["confused_energy_bill"]
    h = [
        Turn("customer", p.opening_line),
        Turn("agent", "Hello Doreen, what does the bill say?"),
    ]
    first = CustomerTurn(model, p, h).run()
    return p, [
        *h,
        Turn("customer", first.text),
        Turn("agent", "And what do you normally pay?"),
    ]


def test_prefix_is_reused_between_turns(qwen: LlamaCppChat) -> None:
    """Turn 2 must not re-read the persona prompt: the engine reads only the new tokens."""
    engine = qwen.batched_engine()
    p, h = after_first_reply(qwen)
    CustomerTurn(qwen, p, h).run()
    full_prompt = len(engine.tokenize_chat(to_openai_messages(build_messages(p, h))))
    assert 0 < engine.stats.last_prompt_read < 0.25 * full_prompt, (
        engine.stats.last_prompt_read,
        full_prompt,
    )


def test_single_engine_reuses_prefix_too(
    default_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The baseline path (one shared Llama behind a lock) keeps llama.cpp's prefix reuse."""
    from providers.local import load_llama

    single = LlamaCppChat(
        model_path=default_model_path, max_tokens=24, seed=7, engine="single", n_ctx=2048
    )
    llm, _ = load_llama(single.model_path, single.n_ctx, single.n_threads)
    assert llm.scores.shape[0] == 1  # the unused n_batch x n_vocab logits buffer is gone
    evaluated: list[int] = []
    real_eval = llm.eval

    def counting_eval(tokens: list[int]) -> None:
        evaluated.append(len(tokens))
        real_eval(tokens)

    monkeypatch.setattr(llm, "eval", counting_eval)
    p, h = after_first_reply(single)
    evaluated.clear()
    CustomerTurn(single, p, h).run()
    prompt_eval = evaluated[0]  # the first eval call is the prompt; the rest are sampled tokens
    full_prompt = llm.n_tokens - sum(evaluated[1:])
    assert prompt_eval < 0.25 * full_prompt, (prompt_eval, full_prompt)


def test_smollm2_fixture_generates(smollm2_path: Path) -> None:
    tiny = LlamaCppChat(model_path=smollm2_path, max_tokens=24, seed=1, n_ctx=2048)
    p = PERSONAS["rushed_airline_rebooking"]
    turn = CustomerTurn(
        tiny,
        p,
        [
            Turn("customer", p.opening_line),
            Turn("agent", "Hi, what's your booking reference?"),
        ],
    )
    reply = turn.run()
    assert reply.text.strip()


def test_state_cache_memory_is_bounded_by_what_it_really_holds(smollm2_path: Path) -> None:
    """Regression: the stock cache ignored the logits copy in each state (~300 MiB on Qwen)."""
    from providers.local import _state_cache, load_llama

    tiny = LlamaCppChat(model_path=smollm2_path, max_tokens=8, n_ctx=1024, seed=1, engine="single")
    llm, _ = load_llama(tiny.model_path, tiny.n_ctx, tiny.n_threads)
    cap = 250 << 20
    llm.set_cache(_state_cache(cap))
    for pid in list(PERSONAS)[:4]:
        p = PERSONAS[pid]
        CustomerTurn(
            tiny, p, [Turn("customer", p.opening_line), Turn("agent", "What happened?")]
        ).run()
    cache = llm.cache
    assert cache is not None and len(cache.cache_state) >= 1
    held = sum(s.llama_state_size + s.scores.nbytes for s in cache.cache_state.values())
    assert cache.cache_size >= held
    assert cache.cache_size <= cap
    # only the last row of logits is kept: an entry costs the state blob, not a logits copy
    assert all(len(s.scores) == 1 for s in cache.cache_state.values())
    # one entry per conversation: continuing a session replaces its earlier state
    p = PERSONAS[next(iter(PERSONAS))]
    h = [Turn("customer", p.opening_line), Turn("agent", "What happened?")]
    before = len(cache.cache_state)
    first = CustomerTurn(tiny, p, h).run()
    h += [Turn("customer", first.text), Turn("agent", "When did it start?")]
    CustomerTurn(tiny, p, h).run()
    assert len(cache.cache_state) <= before + 1


def test_a_scheduled_behaviour_shows_up_on_the_embedded_model(qwen: LlamaCppChat) -> None:
    """Walter is vague about his order number: the director switches vague on at the first
    question about it and the detail on at the second, and on the embedded model the first
    answer leaves the number out and the second gives it (as the probe check reads them)."""
    from sim.behaviour_evidence import shows
    from sim.director import Director, Signals, directive
    from sim.realism import Granted
    from sim.simulator import GuardContext

    p = PERSONAS["unsure_tech_pharmacy_app"]
    d = Director(p)
    facts = {f.id: f.fact for f in p.hidden_facts}
    # greedy: at 0.7 the reply turns on the sampler's luck, which other tests in the run (the
    # shared model's cache and batches) shift; this checks the notes, not the dice
    greedy = qwen.model_copy(update={"temperature": 0.0})
    listen = Signals(listen=True, validate=False, cooperate=False, affirm=False)
    history = [Turn("customer", p.opening_line)]
    state = d.start()
    replies = []
    for question in (
        "Could you tell me the order number?",
        "Sorry, could you read me the exact order number?",
    ):
        step = d.step(state, question, listen)
        assert [c.kind for c in step.behaviours] == ["vague"]
        note = directive(p, step, {fid: facts[fid] for fid in step.unlocked})
        guard = GuardContext(
            locked=d.locked_facts(step.state),
            mood=step.mood_after,
            seed=step.turn,
            granted=Granted.from_step(step),
        )
        reply = CustomerTurn(
            greedy, p, [*history, Turn("agent", question, TurnMeta(directive=note))], guard=guard
        )
        text = reply.run().text
        assert shows(p, step.behaviours[0], text), (step.behaviours[0], text)
        replies.append(text)
        history += [Turn("agent", question, TurnMeta(directive=note)), Turn("customer", text)]
        state = step.state
    assert "30917" not in replies[0] and "30917" in replies[1], replies
