"""Conversations longer than the embedded model's context: which turns are left out, and how
the engine finds the kept turns in its cache (no model needed here; the real-model test is in
``test_llama_engine.py``)."""

from __future__ import annotations

import itertools

from providers.llama_engine.prefixes import _dropped_span
from providers.local import fit_to_context


def convo(turns: int) -> list[dict[str, str]]:
    msgs = [
        {"role": "system", "content": "sys " * 20},
        {"role": "assistant", "content": "opening line"},
    ]
    for i in range(turns):
        msgs.append({"role": "user", "content": f"agent {i} " + "w " * 8})
        msgs.append({"role": "assistant", "content": f"customer {i} " + "w " * 8})
    msgs.append({"role": "user", "content": f"agent {turns} " + "w " * 8})
    return msgs


def words(msgs: list[dict[str, str]]) -> int:
    return sum(len(m["content"].split()) for m in msgs)


def test_a_short_conversation_is_left_as_it_is() -> None:
    msgs = convo(3)
    assert fit_to_context(msgs, words, 1000) == (msgs, 0)


def test_the_oldest_exchanges_go_in_blocks_keeping_the_persona_and_the_new_message() -> None:
    msgs = convo(12)
    kept, dropped = fit_to_context(msgs, words, 200, block=4)
    assert words(msgs) > 200 >= words(kept)
    assert dropped % 8 == 0 and dropped > 0  # whole blocks of 4 exchanges
    assert kept[:2] == msgs[:2] and kept[-1] == msgs[-1]
    assert kept[2:] == msgs[2 + dropped :]  # the rest, in order, alternating as before
    assert kept[2]["role"] == "user"


def test_between_two_cuts_each_prompt_extends_the_last() -> None:
    """What lets the engine reuse its cache: the cut moves only in whole blocks."""
    fits = [fit_to_context(convo(n), words, 200, block=4) for n in range(8, 24)]
    cuts = 0
    for (before, d0), (after, d1) in itertools.pairwise(fits):
        assert d1 >= d0 and (d1 - d0) % 8 == 0
        if d1 == d0:
            assert after[: len(before)] == before  # the next turn only adds to the prompt
        else:
            cuts += 1
    assert 1 <= cuts <= 4


def test_a_prompt_that_cannot_fit_is_returned_unchanged_for_the_engine_to_refuse() -> None:
    msgs = [{"role": "system", "content": "x " * 500}, {"role": "user", "content": "hi"}]
    assert fit_to_context(msgs, words, 100) == (msgs, 0)


def test_the_engine_finds_the_kept_turns_after_the_dropped_span() -> None:
    head, a, b, c, d = [1, 2, 3], [10] * 5, [20, 21] * 40, list(range(100, 180)), [7, 8]
    held = head + a + b + c
    want = head + c + d
    assert _dropped_span(held, want, min_gain=64) == (3, len(a + b), len(c))


def test_another_conversation_that_shares_some_messages_is_not_taken() -> None:
    head, mine, shared, theirs = [1, 2, 3], [40] * 10, list(range(100, 180)), [9] * 40
    held = head + [50] * 10 + shared + theirs  # their turns go on past the shared part
    want = head + mine + shared + [7]
    assert _dropped_span(held, want, min_gain=64) is None
    assert _dropped_span(head + shared, head + shared + [7], min_gain=64) is None  # a plain prefix
