"""What the realism checks (``sim/realism/``) add to a reply, timed apart from the model.

On a shared machine the model's own latency swings by seconds from one run to the next, far
more than the checks cost, so ``bench/chat_latency.py`` also times the checks alone on the
replies it got: for each turn, a fresh ``CustomerTurn`` (its prompt and check context built)
and the check of the first releasable sentence, which is all that stands between the model's
first sentence and the trainee, with the realism checks on and off. The guard runs in both.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bench.common import median


def check_cost(
    persona: Any, agent_msgs: Sequence[str], replies: Sequence[str], reps: int = 50
) -> list[dict[str, Any]]:
    """Per turn: median seconds to build the turn and check its first sentence (``first_*``)
    and to check the whole reply (``whole_*``), realism checks on and off."""
    from common.turns import Turn
    from providers.fake import ScriptedChatModel
    from sim.simulator import CustomerTurn, GuardContext, releasable

    model = ScriptedChatModel()  # never called: only the checks run
    history = [Turn("customer", persona.opening_line)]
    rows: list[dict[str, Any]] = []
    for n, (agent, reply) in enumerate(zip(agent_msgs, replies, strict=True), 1):
        history.append(Turn("agent", agent))
        # the first piece the stream releases: words arrive until a sentence is complete
        words = reply.split(" ")
        prefixes = (releasable(" ".join(words[:k])) for k in range(1, len(words) + 1))
        first = next((p for p in prefixes if p), reply)
        row: dict[str, Any] = {"turn": n, "first_sentence": first}
        for on in (True, False):
            firsts, wholes = [], []
            for _ in range(reps):
                t0 = time.perf_counter()
                turn = CustomerTurn(model, persona, history, guard=GuardContext(realism=on))
                turn.check(first, final=False)
                t1 = time.perf_counter()
                turn.check(reply)
                firsts.append(t1 - t0)
                wholes.append(time.perf_counter() - t1)
            key = "on" if on else "off"
            row[f"first_{key}_s"] = median(firsts)
            row[f"whole_{key}_s"] = median(wholes)
        row["first_extra_s"] = row["first_on_s"] - row["first_off_s"]
        rows.append(row)
        history.append(Turn("customer", reply))
    return rows
