"""One simulated trainee of the load bench: a ``gradio_client.Client`` that starts a session,
sends its messages through ``/send`` timing each streamed reply, and ends the session."""

from __future__ import annotations

import contextlib
import html
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER = "…"
TYPING = "The customer is typing…"


def message_text(m: Any) -> str:
    """The text of one Chatbot message as the client receives it (str or content parts)."""
    if not isinstance(m, dict):
        return ""
    c = m.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(
            str(p.get("text", "")) for p in c if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def norm(text: str) -> str:
    """Shown text back to stored text: the app escapes HTML; whitespace may differ."""
    return " ".join(html.unescape(text).split())


@dataclass
class ReplyTiming:
    trainee: int
    turn: int
    sent: str
    submitted_s: float  # since the level started
    ttft_s: float | None = None  # request -> first update with customer text
    placeholder_s: float | None = None  # request -> the "…" placeholder (handler started)
    last_text_s: float | None = None  # request -> last streamed update with new text
    total_s: float | None = None  # request -> job finished
    updates: int = 0
    reply: str = ""  # the reply as shown (unescaped)
    status: str = ""
    tokens: int | None = None
    error: str | None = None
    rejected: bool = False  # refused before anything was stored (e.g. the session had ended)

    @property
    def decode_tokens_per_s(self) -> float | None:
        if (
            self.tokens is None
            or self.tokens < 2
            or self.ttft_s is None
            or self.last_text_s is None
            or self.last_text_s <= self.ttft_s
        ):
            return None
        return (self.tokens - 1) / (self.last_text_s - self.ttft_s)


@dataclass
class Trainee:
    idx: int
    persona: str
    messages: list[str]
    session_id: str | None = None
    start_s: float | None = None  # /start round trip
    end_s: float | None = None  # /end round trip (grading)
    replies: list[ReplyTiming] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ended_by_customer: str | None = None
    skipped: int = 0  # messages not sent because the level's time ran out
    db: dict[str, Any] = field(default_factory=dict)


def status_text(x: Any) -> str:
    return x if isinstance(x, str) else ""


def send_one(
    client: Any,
    r: ReplyTiming,
    chat: list[Any],
    t_level: float,
    timeout: float,
    poll: float,
) -> list[Any]:
    """Submit one message, follow its streamed updates, fill ``r``; return the new chat."""
    n_before = len(chat)
    t0 = time.perf_counter()
    r.submitted_s = t0 - t_level
    job = client.submit(r.sent, chat, api_name="/send")
    seen = 0
    last_text = ""
    final: Any = None
    first_status: str | None = None
    while True:
        done = job.done()
        outs = job.outputs()
        now = time.perf_counter() - t0
        while seen < len(outs):
            o = outs[seen]
            seen += 1
            if not isinstance(o, (tuple, list)) or len(o) < 3:
                continue
            final = o
            msgs = o[0] if isinstance(o[0], list) else []
            if first_status is None:
                first_status = status_text(o[2])
            if len(msgs) < n_before + 2 or not isinstance(msgs[-1], dict):
                continue
            if msgs[-1].get("role") != "assistant":
                continue
            text = message_text(msgs[-1]).strip()
            if text == PLACEHOLDER:
                if r.placeholder_s is None:
                    r.placeholder_s = now
                continue
            if text and text != last_text:
                if r.ttft_s is None:
                    r.ttft_s = now
                r.last_text_s = now
                r.updates += 1
                last_text = text
        if done:
            break
        if now > timeout:
            job.cancel()
            r.error = f"timeout after {timeout:.0f} s"
            return chat
        time.sleep(poll)
    r.total_s = time.perf_counter() - t0
    try:
        job.result(timeout=5)
    except Exception as exc:  # the handler raised, or the connection broke
        r.error = f"{type(exc).__name__}: {exc}"
        return chat
    if final is None:
        r.error = "no output"
        return chat
    msgs = final[0] if isinstance(final[0], list) else chat
    r.status = status_text(final[2])
    if r.status.startswith("⚠️"):
        if r.placeholder_s is None and (first_status or "").startswith("⚠️"):
            r.rejected = True  # check_message refused it; nothing was stored
        else:
            r.error = f"app: {r.status}"
        return msgs
    if len(msgs) < n_before + 2 or msgs[-1].get("role") != "assistant":
        r.error = "the final chat has no reply"
        return msgs
    r.reply = norm(message_text(msgs[-1]))
    if r.ttft_s is None:  # not streamed: the whole reply came in the last update
        r.ttft_s = r.last_text_s = r.total_s
    return msgs


def run_trainee(
    t: Trainee,
    url: str,
    t_level: float,
    *,
    deadline: float,
    reply_timeout: float,
    read_s: float,
    think_s: float,
    poll: float,
    end: bool,
    jitter: float = 0.0,
    seed: int | None = None,
) -> None:
    from gradio_client import Client

    # people take varied times to read and type: each pause is drawn from
    # [t * (1 - jitter), t * (1 + jitter)], seeded per trainee so a run can be repeated
    rng = random.Random(None if seed is None else seed * 1000 + t.idx)

    def pause(s: float) -> None:
        if s:
            time.sleep(s * rng.uniform(1 - jitter, 1 + jitter) if jitter else s)

    try:
        client = Client(url, verbose=False)
        t0 = time.perf_counter()
        out = client.predict(t.persona, api_name="/start")
        t.start_s = time.perf_counter() - t0
        chat: list[Any] = list(out[0]) if isinstance(out, (tuple, list)) else []
    except Exception as exc:
        t.errors.append(f"start: {type(exc).__name__}: {exc}")
        return
    pause(read_s)
    for k, msg in enumerate(t.messages, 1):
        if time.perf_counter() > deadline:
            t.skipped = len(t.messages) - k + 1  # bounded duration: not an error
            break
        r = ReplyTiming(trainee=t.idx, turn=k, sent=msg, submitted_s=0.0)
        t.replies.append(r)
        try:
            chat = send_one(client, r, chat, t_level, reply_timeout, poll)
        except Exception as exc:
            r.error = f"{type(exc).__name__}: {exc}"
        if r.error:
            t.errors.append(f"turn {k}: {r.error}")
            break
        if r.rejected:
            t.ended_by_customer = r.status
            break
        if r.status and r.status != TYPING:  # the customer ended the conversation
            t.ended_by_customer = r.status
            break
        pause(think_s)
    if end:
        try:
            t0 = time.perf_counter()
            out = client.predict(api_name="/end")
            t.end_s = time.perf_counter() - t0
            m = re.search(r"id `([0-9a-f]+)`", status_text(out[0]) if out else "")
            if m:
                t.session_id = m.group(1)
            else:
                t.errors.append(f"end: no session id in {str(out[0])[:120]!r}")
        except Exception as exc:
            t.errors.append(f"end: {type(exc).__name__}: {exc}")
    with contextlib.suppress(Exception):
        client.close()
