"""Load: N simulated trainees chatting at once with the running app, through Gradio's API.

    python -m bench.load [--n 1 4 8] [--turns 3 3 2] [--max-tokens 40] [--url URL --db PATH]

By default each level N starts a fresh app (``python -m cli serve`` on a free port on
127.0.0.1, the embedded model, a temporary data dir, ``RAPPORT_MAX_TOKENS=40``), so every
level starts from the same cold state and its memory peak is its own. ``--url`` drives an
app that is already running instead (``--db`` then names its SQLite file for the lost-turn
check, ``--pid`` its process for the memory figure).

Each trainee is one ``gradio_client.Client`` (its own Gradio session, so its own
``session_id`` state) and plays a closed loop with no think time by default: ``/start`` with a
persona (round-robin over ``--personas``), then K agent messages through ``/send``, each sent
as soon as the previous reply has finished, then ``/end`` (grading, as a trainee would).
Per reply it records the time to first token (TTFT): from the request to the first streamed
update whose customer message has text (the app first shows a "…" placeholder; that does not
count). Queueing in Gradio and waiting for the shared model's lock are part of it, as a
trainee would feel them. Afterwards every trainee's messages and replies are checked against
the app's SQLite database: each agent message committed once, in order, and answered by a
customer turn whose text is the reply the trainee was shown; a message missing, unanswered
or answered differently is a lost turn.

Targets (issue): p95 TTFT at N=4 within 3x the single-user figure; 0 errors and 0 lost turns
at N=8; the app's peak RSS with the model loaded <= 2.5 GB. Figures go to
``bench/results/load.json``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    Figure,
    figure,
    figures_table,
    fmt,
    loadavg,
    machine_info,
    now_iso,
    package_version,
    percentile,
    ratio,
    table,
    targets_of,
    write_results,
)

NAME = "load"
DEFAULT_N = (1, 4, 8)
DEFAULT_PERSONAS = (
    "irate_broadband_outage",
    "confused_energy_bill",
    "anxious_international_transfer",
    "disappointed_wedding_dress",
    "grieving_cloud_photos",
    "irate_gym_cancellation",
    "rushed_airline_rebooking",
    "sceptical_saas_double_charge",
)
P95_RATIO_TARGET = 3.0  # p95 TTFT at N=4 / the single-user figure
RSS_TARGET_GB = 2.5
PLACEHOLDER = "…"
TYPING = "The customer is typing…"


def default_turns(n: int) -> int:
    """3 agent messages per trainee, 2 above N=4 (N=8 x 3 is long on 2 cores)."""
    return 3 if n <= 4 else 2


# --- the app process -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_path() -> Path:
    """The GGUF the app would use, resolved here so a temporary data dir needn't hold one."""
    from common.settings import Settings
    from providers.registry import local_model_path

    return local_model_path(Settings())


@dataclass
class MemSample:
    t: float
    rss_mib: float
    hwm_mib: float
    anon_mib: float | None
    file_mib: float | None


def read_mem(pid: int) -> MemSample | None:
    """VmRSS / VmHWM / RssAnon / RssFile of a process from /proc (psutil is not required)."""
    vals: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    vals[key] = int(line.split()[1]) / 1024
    except OSError:
        try:
            import psutil

            rss = psutil.Process(pid).memory_info().rss / 2**20
            return MemSample(time.perf_counter(), rss, rss, None, None)
        except Exception:
            return None
    if "VmRSS" not in vals:
        return None
    return MemSample(
        time.perf_counter(),
        round(vals["VmRSS"], 1),
        round(vals.get("VmHWM", vals["VmRSS"]), 1),
        round(vals["RssAnon"], 1) if "RssAnon" in vals else None,
        round(vals["RssFile"], 1) if "RssFile" in vals else None,
    )


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), else None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class MemWatch:
    """Samples a process's memory every ``every`` seconds in a daemon thread."""

    def __init__(self, pid: int | None, every: float = 0.5) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[MemSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> MemSample | None:
        s = read_mem(self.pid) if self.pid else None
        if s is not None:
            self.samples.append(s)
        return s

    def start(self) -> MemWatch:
        if self.pid:
            self._thread = threading.Thread(target=self._run, name="memwatch", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def stop(self, t0: float | None = None) -> dict[str, Any]:
        """The peak, and the samples as [seconds since ``t0``, RSS, anon, file] in MiB."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        last = self.sample()
        if not self.samples:
            return {"pid": self.pid, "peak_rss_mib": None, "hwm_mib": None, "samples": 0}
        peak = max(self.samples, key=lambda s: s.rss_mib)
        return {
            "pid": self.pid,
            "peak_rss_mib": peak.rss_mib,  # highest sampled VmRSS
            "peak_anon_mib": peak.anon_mib,
            "peak_file_mib": peak.file_mib,  # the mmapped model's pages count here
            "hwm_mib": max(s.hwm_mib for s in self.samples),  # kernel's peak: exact
            "end_rss_mib": last.rss_mib if last else None,
            "peak_at_s": round(peak.t - t0, 1) if t0 is not None else None,
            "samples": len(self.samples),
            "series": [
                [round(x.t - (t0 or self.samples[0].t), 1), x.rss_mib, x.anon_mib, x.file_mib]
                for x in self.samples
            ],
        }


class AppServer:
    """``python -m cli serve`` in its own process group, with its own data dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        provider: str = "local",
        max_tokens: int = 40,
        seed: int | None = 1,
        threads: int | None = None,
        model: Path | None = None,
        fake_script: Path | None = None,
        app_env: dict[str, str] | None = None,
        startup_timeout: float = 300.0,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "serve.log"
        env = dict(os.environ)
        for k in (
            "RAPPORT_CHROMA_HOST",
            "RAPPORT_DATABASE_URL",
            "RAPPORT_BASE_URL",
            "RAPPORT_HOST",
            "RAPPORT_PORT",
        ):
            env.pop(k, None)
        env.update(
            {
                "RAPPORT_PROVIDER": provider,
                "RAPPORT_DATA_DIR": str(data_dir),
                "RAPPORT_MAX_TOKENS": str(max_tokens),
                "RAPPORT_AUTH": "off",
                "GRADIO_ANALYTICS_ENABLED": "False",
                "ANONYMIZED_TELEMETRY": "False",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if seed is not None:
            env["RAPPORT_SEED"] = str(seed)
        if threads:
            env["RAPPORT_N_THREADS"] = str(threads)
        if provider == "local":
            env["RAPPORT_MODEL_PATH"] = str(model or model_path())
        if fake_script is not None:
            env["RAPPORT_FAKE_SCRIPT"] = str(fake_script)
        env.update(app_env or {})
        self.env = env
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "rapport.sqlite3"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> AppServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps writing to it
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(self.port)],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the app exited with {self.proc.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/config", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - t0 > self.startup_timeout:
                self.stop()
                raise RuntimeError(f"the app did not answer in {self.startup_timeout:.0f} s")
            time.sleep(0.5)
        self.startup_s = time.perf_counter() - t0
        return self

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        """SIGTERM to the app's own process group (we started it), SIGKILL after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


# --- one trainee ---------------------------------------------------------------------------


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


def _status_text(x: Any) -> str:
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
                first_status = _status_text(o[2])
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
    r.status = _status_text(final[2])
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
            m = re.search(r"id `([0-9a-f]+)`", _status_text(out[0]) if out else "")
            if m:
                t.session_id = m.group(1)
            else:
                t.errors.append(f"end: no session id in {str(out[0])[:120]!r}")
        except Exception as exc:
            t.errors.append(f"end: {type(exc).__name__}: {exc}")
    with contextlib.suppress(Exception):
        client.close()


# --- checking against the database --------------------------------------------------------


class DbReader:
    """Read-only queries on the app's session database: a SQLite file (opened read-only) or,
    with ``--db postgresql+psycopg://...``, any URL SQLAlchemy takes."""

    def __init__(self, db: Path | str) -> None:
        self.con: sqlite3.Connection | None = None
        self.engine: Any = None
        if isinstance(db, Path) or "://" not in db:
            try:
                self.con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            except sqlite3.Error:
                self.con = sqlite3.connect(db, timeout=10)
        else:
            from sqlalchemy import create_engine

            self.engine = create_engine(db)

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """``query`` with ``?`` placeholders."""
        if self.con is not None:
            return [tuple(r) for r in self.con.execute(query, params).fetchall()]
        from sqlalchemy import text

        names = {f"p{i}": v for i, v in enumerate(params)}
        for i in range(len(params)):
            query = query.replace("?", f":p{i}", 1)
        with self.engine.connect() as c:
            return [tuple(r) for r in c.execute(text(query), names).fetchall()]

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
        if self.engine is not None:
            self.engine.dispose()


def db_turns(con: DbReader, sid: str) -> list[tuple[str, str]]:
    rows = con.rows("SELECT role, text FROM turns WHERE session_id = ? ORDER BY idx", sid)
    return [(str(a), str(b)) for a, b in rows]


def find_session(con: DbReader, t: Trainee, taken: set[str]) -> str | None:
    """Without an id from /end: the unclaimed session of this persona whose agent turns
    start with this trainee's first message."""
    if not t.replies:
        return None
    rows = con.rows("SELECT id FROM sessions WHERE persona_id = ? ORDER BY started_at", t.persona)
    for (sid,) in rows:
        if sid in taken:
            continue
        agents = [x for role, x in db_turns(con, sid) if role == "agent"]
        if agents and agents[0].strip() == t.replies[0].sent.strip():
            return str(sid)
    return None


def check_db(db: Path | str, trainees: Sequence[Trainee]) -> dict[str, Any]:
    """Every message the trainee sent committed once and in order, each answered by the
    reply the trainee was shown; a message not stored, not answered or answered with other
    text than the trainee saw is a lost turn. Fills ``t.db``; returns totals."""
    con = DbReader(db)
    taken = {t.session_id for t in trainees if t.session_id}
    lost = mismatched = extra = 0
    try:
        for t in trainees:
            sid = t.session_id or find_session(con, t, taken)
            sent = [r for r in t.replies if not r.rejected]
            if sid is None:
                t.db = {"session_id": None, "lost": len(sent), "why": "session not found"}
                lost += len(sent)
                continue
            taken.add(sid)
            turns = db_turns(con, sid)
            pairs: list[tuple[str, str | None]] = []
            for i, (role, text) in enumerate(turns):
                if role == "agent":
                    nxt = turns[i + 1] if i + 1 < len(turns) else None
                    pairs.append((text, nxt[1] if nxt and nxt[0] == "customer" else None))
            t_lost = t_mis = 0
            why: list[str] = []
            for k, r in enumerate(sent):
                if k >= len(pairs) or pairs[k][0].strip() != r.sent.strip():
                    t_lost += 1
                    why.append(f"turn {r.turn}: agent message not stored")
                elif pairs[k][1] is None:
                    t_lost += 1
                    why.append(f"turn {r.turn}: no customer reply stored")
                elif r.error is None and norm(pairs[k][1] or "") != r.reply:
                    t_mis += 1
                    why.append(f"turn {r.turn}: stored reply differs from the one shown")
            t_extra = max(0, len(pairs) - len(sent))
            t.db = {
                "session_id": sid,
                "agent_turns_stored": len(pairs),
                "answered": sum(1 for _, c in pairs if c is not None),
                "lost": t_lost,
                "mismatched": t_mis,
                "extra": t_extra,
                "why": why,
            }
            lost += t_lost
            mismatched += t_mis
            extra += t_extra
    finally:
        con.close()
    return {"lost_turns": lost + mismatched, "not_stored_or_unanswered": lost,
            "reply_mismatch": mismatched, "extra_agent_turns": extra}  # fmt: skip


# --- a level: N trainees at once -----------------------------------------------------------


class Tokens:
    """Counts reply tokens with the model's own tokenizer (vocab only: ~0.3 s, ~100 MB)."""

    def __init__(self, model: Path | None) -> None:
        self.llm: Any = None
        if model is None:
            return
        try:
            from llama_cpp import Llama

            self.llm = Llama(model_path=str(model), vocab_only=True, verbose=False)
        except Exception:
            self.llm = None

    def count(self, text: str) -> int | None:
        if self.llm is None:
            return None
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False)) if text else 0


def _p(xs: Sequence[float], q: float) -> float | None:
    return percentile(xs, q) if xs else None


def summarise(
    n: int, trainees: Sequence[Trainee], wall_s: float, db: dict[str, Any] | None
) -> dict[str, Any]:
    replies = [r for t in trainees for r in t.replies]
    ok = [r for r in replies if r.error is None and not r.rejected and r.ttft_s is not None]
    ttft = [r.ttft_s for r in ok if r.ttft_s is not None]
    first = [r.ttft_s for r in ok if r.turn == 1 and r.ttft_s is not None]
    later = [r.ttft_s for r in ok if r.turn > 1 and r.ttft_s is not None]
    totals = [r.total_s for r in ok if r.total_s is not None]
    tokens = [r.tokens for r in ok if r.tokens is not None]
    decode = [d for r in ok if (d := r.decode_tokens_per_s) is not None]
    errors = sum(len(t.errors) for t in trainees)
    return {
        "n": n,
        "trainees": n,
        "replies_ok": len(ok),
        "replies_attempted": len(replies),
        "rejected": sum(1 for r in replies if r.rejected),
        "errors": errors,
        "lost_turns": db["lost_turns"] if db else None,
        "db_check": db,
        "ttft_p50_s": _p(ttft, 50),
        "ttft_p95_s": _p(ttft, 95),
        "ttft_max_s": max(ttft) if ttft else None,
        "ttft_turn1_p50_s": _p(first, 50),
        "ttft_turn1_p95_s": _p(first, 95),
        "ttft_later_p50_s": _p(later, 50),
        "ttft_later_p95_s": _p(later, 95),
        "reply_total_p50_s": _p(totals, 50),
        "reply_total_p95_s": _p(totals, 95),
        "reply_tokens_sum": sum(tokens) if tokens else None,
        "decode_tokens_per_s_p50": _p(decode, 50),
        "tokens_per_s_all_sessions": (sum(tokens) / wall_s) if tokens and wall_s else None,
        "tokens_per_s_per_session": (sum(tokens) / wall_s / n) if tokens and wall_s else None,
        "start_p50_s": _p([t.start_s for t in trainees if t.start_s is not None], 50),
        "end_p50_s": _p([t.end_s for t in trainees if t.end_s is not None], 50),
        "ended_by_customer": sum(1 for t in trainees if t.ended_by_customer),
        "skipped_for_time": sum(t.skipped for t in trainees),
        "wall_s": wall_s,
    }


def run_level(
    n: int,
    turns: int,
    *,
    url: str | None,
    db: Path | str | None,
    pid: int | None,
    personas: Sequence[str],
    tokens: Tokens,
    server_kw: dict[str, Any],
    max_seconds: float,
    reply_timeout: float,
    read_s: float,
    think_s: float,
    ramp_s: float,
    poll: float,
    end: bool,
    keep_data: bool,
    jitter: float = 0.0,
    seed: int | None = None,
) -> dict[str, Any]:
    from bench.chat_latency import script_for

    tmp: tempfile.TemporaryDirectory[str] | None = None
    server: AppServer | None = None
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix=f"rapport-load-n{n}-")
        server = AppServer(Path(tmp.name), **server_kw)
        print(f"  N={n}: starting the app ...", file=sys.stderr, flush=True)
        server.start()
        url, db, pid = server.url, server.db_path, server.pid
        print(f"  N={n}: app up at {url} in {server.startup_s:.1f} s", file=sys.stderr, flush=True)
    watch = MemWatch(pid).start()
    ready = watch.sample()
    trainees = [
        Trainee(i, personas[i % len(personas)], script_for(personas[i % len(personas)], turns))
        for i in range(n)
    ]
    load_start = loadavg()
    cpu_start = cpu_seconds(pid)
    client_cpu_start = time.process_time()
    t_level = time.perf_counter()
    deadline = t_level + max_seconds
    threads = []
    stopped = False
    try:
        for t in trainees:
            th = threading.Thread(
                target=run_trainee,
                args=(t, url, t_level),
                kwargs={
                    "deadline": deadline,
                    "reply_timeout": reply_timeout,
                    "read_s": read_s,
                    "think_s": think_s,
                    "jitter": jitter,
                    "seed": seed,
                    "poll": poll,
                    "end": end,
                },
                name=f"trainee-{t.idx}",
                daemon=True,
            )
            th.start()
            threads.append(th)
            if ramp_s:
                time.sleep(ramp_s)
        for th in threads:
            th.join(timeout=max(1.0, deadline - time.perf_counter() + reply_timeout + 120))
        wall = time.perf_counter() - t_level
        cpu_end = cpu_seconds(pid)
        client_cpu = time.process_time() - client_cpu_start
        hung = [t.idx for t, th in zip(trainees, threads, strict=True) if th.is_alive()]
        for i in hung:
            trainees[i].errors.append("still running when the level was stopped")
        mem = watch.stop(t_level)
        stopped = True
        for t in trainees:
            for r in t.replies:
                r.tokens = tokens.count(r.reply) if r.reply else None
        if isinstance(db, str) and "://" not in db:
            db = Path(db)
        usable = db is not None and (not isinstance(db, Path) or db.exists())
        checked = check_db(db, trainees) if db is not None and usable else None
        log_tail = server.log_tail() if server else None
    finally:
        if not stopped:
            watch.stop()
        if server is not None:
            server.stop()
        if tmp is not None and not keep_data:
            tmp.cleanup()
    res = summarise(n, trainees, wall, checked)
    cpu_used = cpu_end - cpu_start if cpu_start is not None and cpu_end is not None else None
    res.update(
        {
            "turns_per_trainee": turns,
            "personas": [t.persona for t in trainees],
            "loadavg_start": load_start,
            "loadavg_end": loadavg(),
            "app_startup_s": server.startup_s if server else None,
            # CPU the app got while the trainees ran, in cores: well under the model's thread
            # count means other load on the machine slowed this level down
            "app_cpu_s": cpu_used,
            "app_cores_busy": cpu_used / wall if cpu_used is not None and wall else None,
            # ... and what this load generator took from the same cores meanwhile
            "client_cpu_s": client_cpu,
            "client_cores_busy": client_cpu / wall if wall else None,
            "rss_ready_mib": ready.rss_mib if ready else None,
            "memory": mem,
            "trainee_detail": [
                {
                    **{k: v for k, v in asdict(t).items() if k != "replies"},
                    "replies": [
                        asdict(r) | {"decode_tokens_per_s": r.decode_tokens_per_s}
                        for r in t.replies
                    ],
                }
                for t in trainees
            ],
        }
    )
    if log_tail and (res["errors"] or res["lost_turns"]):
        res["app_log_tail"] = log_tail
    return res


def progress_line(lv: dict[str, Any]) -> str:
    m = lv["memory"]
    return (
        f"  N={lv['n']}: {lv['replies_ok']} replies, TTFT p50 {fmt(lv['ttft_p50_s'])} s "
        f"p95 {fmt(lv['ttft_p95_s'])} s, errors {lv['errors']}, lost {lv['lost_turns']}, "
        f"wall {lv['wall_s']:.0f} s, RSS peak {fmt(m.get('hwm_mib'))} MiB"
    )


# --- the whole bench -----------------------------------------------------------------------


def run(
    ns: Sequence[int] = (1, 4),
    turns: Sequence[int] | None = None,
    *,
    max_tokens: int = 40,
    url: str | None = None,
    db: Path | str | None = None,
    pid: int | None = None,
    personas: Sequence[str] = DEFAULT_PERSONAS,
    provider: str = "local",
    fake_script: Path | None = None,
    app_env: dict[str, str] | None = None,
    seed: int | None = 1,
    threads: int | None = None,
    max_seconds: float = 900.0,
    reply_timeout: float = 600.0,
    read_s: float = 0.0,
    think_s: float = 0.0,
    ramp_s: float = 0.0,
    jitter: float = 0.0,
    poll: float = 0.005,
    end: bool = True,
    keep_data: bool = False,
) -> dict[str, Any]:
    """Every level in ``ns``; the first is the baseline the others' ratios use (put N=1 first)."""
    started = time.perf_counter()
    load_start = loadavg()
    if turns is None or len(turns) == 0:
        per_n = [default_turns(n) for n in ns]
    elif len(turns) == 1:
        per_n = [turns[0]] * len(ns)
    elif len(turns) == len(ns):
        per_n = list(turns)
    else:
        raise ValueError("--turns takes one value, or one per --n")
    model = model_path() if provider == "local" and url is None else None
    tok = Tokens(model or (model_path() if provider == "local" else None))
    server_kw: dict[str, Any] = {
        "provider": provider,
        "max_tokens": max_tokens,
        "seed": seed,
        "threads": threads,
        "model": model,
        "fake_script": fake_script,
        "app_env": dict(app_env or {}),
    }
    levels = []
    for n, k in zip(ns, per_n, strict=True):
        print(f"  N={n}: {n} trainee(s) x {k} message(s) ...", file=sys.stderr, flush=True)
        lv = run_level(
            n,
            k,
            url=url,
            db=db,
            pid=pid,
            personas=personas,
            tokens=tok,
            server_kw=server_kw,
            max_seconds=max_seconds,
            reply_timeout=reply_timeout,
            read_s=read_s,
            think_s=think_s,
            ramp_s=ramp_s,
            poll=poll,
            end=end,
            keep_data=keep_data,
            jitter=jitter,
            seed=seed,
        )
        print(progress_line(lv), file=sys.stderr, flush=True)
        levels.append(lv)
    figs = make_figures(levels)
    return {
        "bench": NAME,
        "timestamp": now_iso(),
        "machine": machine_info() | {"loadavg_start": load_start, "loadavg_end": loadavg()},
        "nproc": machine_info()["nproc"],
        "config": {
            "ns": list(ns),
            "turns": per_n,
            "max_tokens": max_tokens,
            "provider": provider,
            "model_file": model.name if model else None,
            "seed": seed,
            "app_env": dict(app_env or {}),
            "threads": threads,
            "url": url,
            "personas": list(personas),
            "read_s": read_s,
            "think_s": think_s,
            "ramp_s": ramp_s,
            "jitter": jitter,
            "max_seconds": max_seconds,
            "reply_timeout_s": reply_timeout,
            "end_sessions": end,
            "gradio_queue": "default_concurrency_limit=max(4, RAPPORT_LOCAL_SLOTS), max_size unset",
            "local_engine": (app_env or {}).get("RAPPORT_LOCAL_ENGINE", "batched"),
            "gradio": package_version("gradio"),
            "gradio_client": package_version("gradio_client"),
            "llama_cpp_python": package_version("llama_cpp_python"),
        },
        "levels": levels,
        "figures": figs,
        "targets": targets_of(figs),
        "wall_s": time.perf_counter() - started,
    }


def paused(config: dict[str, Any]) -> bool:
    """Whether the trainees paused to read or think (the app idles between their messages)."""
    return bool(config.get("read_s") or config.get("think_s"))


def contention_warnings(levels: Sequence[dict[str, Any]], paused: bool = False) -> list[str]:
    """Levels where the app got much less CPU than in the busiest level: other load on the
    machine slowed them, so ratios against them (above all the N=1 baseline) mislead. With
    read/think pauses (``paused``) the app idles by design, and this says nothing."""
    if paused:
        return []
    busy = [x.get("app_cores_busy") for x in levels]
    top = max((b for b in busy if b is not None), default=None)
    out = []
    for lv, b in zip(levels, busy, strict=True):
        if top is not None and b is not None and b < 0.8 * top:
            la = (lv.get("loadavg_start") or [None])[0]
            out.append(
                f"N={lv['n']}: the app got {b:.2f} cores (up to {top:.2f} in other levels; "
                f"load average {la} at its start): other load slowed it, so treat ratios "
                "against it with care"
            )
    return out


def _gb(mib: float | None) -> float | None:
    return mib * 2**20 / 1e9 if mib is not None else None


def make_figures(levels: Sequence[dict[str, Any]]) -> list[Figure]:
    if not levels:
        return []
    base = levels[0]
    bn = base["n"]
    figs: list[Figure] = []
    for lv in levels:
        n = lv["n"]
        is_base = lv is base
        b50 = None if is_base else base["ttft_p50_s"]
        b95 = None if is_base else base["ttft_p95_s"]
        figs.append(
            figure(
                f"N={n} TTFT p50 ({lv['replies_ok']} replies)",
                lv["ttft_p50_s"],
                "s",
                baseline=b50,
                baseline_name=None if is_base else f"N={bn} p50",
            )
        )
        figs.append(
            figure(
                f"N={n} TTFT p95",
                lv["ttft_p95_s"],
                "s",
                baseline=b95,
                baseline_name=None if is_base else f"N={bn} p95",
                target=P95_RATIO_TARGET if n == 4 and not is_base else None,
                target_on="ratio",
            )
        )
        if n == 4 and not is_base:
            figs.append(
                figure(
                    "N=4 TTFT p95 vs single-user p50",
                    lv["ttft_p95_s"],
                    "s",
                    baseline=base["ttft_p50_s"],
                    baseline_name=f"N={bn} p50",
                    target=P95_RATIO_TARGET,
                    target_on="ratio",
                    note="the stricter reading of 'within 3x the single-user figure'",
                )
            )
        figs.append(
            figure(
                f"N={n} TTFT p95, turns 2+ (model already read the persona)",
                lv["ttft_later_p95_s"],
                "s",
                baseline=None if is_base else base["ttft_later_p95_s"],
                baseline_name=None if is_base else f"N={bn} turns 2+ p95",
            )
        )
        figs.append(
            figure(
                f"N={n} errors",
                float(lv["errors"]),
                "",
                target=0.0 if n >= 8 else None,
            )
        )
        figs.append(
            figure(
                f"N={n} lost turns (vs SQLite)",
                float(lv["lost_turns"]) if lv["lost_turns"] is not None else None,
                "",
                target=0.0 if n >= 8 else None,
            )
        )
        figs.append(
            figure(
                f"N={n} tokens/s, all sessions together",
                lv["tokens_per_s_all_sessions"],
                "tok/s",
                baseline=None if is_base else base["tokens_per_s_all_sessions"],
                baseline_name=None if is_base else f"N={bn}",
            )
        )
        figs.append(
            figure(
                f"N={n} wall time ({lv['replies_ok']} replies)",
                lv["wall_s"],
                "s",
                baseline=None if is_base else base["wall_s"],
                baseline_name=None if is_base else f"N={bn}",
            )
        )
        m = lv["memory"]
        figs.append(
            figure(
                f"N={n} app peak RSS (VmHWM, model loaded)",
                _gb(m.get("hwm_mib")),
                "GB",
                baseline=_gb(lv["rss_ready_mib"]),
                baseline_name="app RSS when ready, before the model loads",
                target=RSS_TARGET_GB,
            )
        )
    return figs


def report(res: dict[str, Any]) -> str:
    rows = []
    for lv in res["levels"]:
        m = lv["memory"]
        rows.append(
            [
                lv["n"],
                lv["turns_per_trainee"],
                lv["replies_ok"],
                lv["ttft_p50_s"],
                lv["ttft_p95_s"],
                lv["ttft_turn1_p50_s"],
                lv["ttft_later_p50_s"],
                lv["ttft_later_p95_s"],
                lv["reply_total_p95_s"],
                lv["tokens_per_s_all_sessions"],
                lv["errors"],
                lv["lost_turns"],
                round(lv["wall_s"], 1),
                lv.get("app_cores_busy"),
                lv["loadavg_start"][0] if lv.get("loadavg_start") else None,
                m.get("hwm_mib"),
            ]
        )
    head = [
        "N",
        "msgs",
        "replies",
        "ttft p50",
        "ttft p95",
        "turn1 p50",
        "2+ p50",
        "2+ p95",
        "reply p95",
        "tok/s all",
        "errors",
        "lost",
        "wall s",
        "app cores",
        "load1",
        "RSS peak MiB",
    ]
    c = res["config"]
    out = [
        f"load  provider={c['provider']} model={c['model_file']} max_tokens={c['max_tokens']} "
        f"nproc={res['nproc']} think={c['think_s']}s loadavg={res['machine']['loadavg_start']}"
        f"->{res['machine']['loadavg_end']}",
        "",
        table(rows, head),
    ]
    lv = {x["n"]: x for x in res["levels"]}
    if 1 in lv and 4 in lv:
        r95 = ratio(lv[4]["ttft_p95_s"], lv[1]["ttft_p95_s"])
        r50 = ratio(lv[4]["ttft_p95_s"], lv[1]["ttft_p50_s"])
        out.append(
            f"\np95 TTFT N=4 / N=1: x{fmt(r95, 2)} vs p95, x{fmt(r50, 2)} vs p50 "
            f"(target <= {P95_RATIO_TARGET})"
        )
    if 8 in lv:
        out.append(
            f"N=8: {lv[8]['errors']} errors, {lv[8]['lost_turns']} lost turns (target 0 and 0)"
        )
    out += [f"warning: {w}" for w in contention_warnings(res["levels"], paused(res["config"]))]
    for x in res["levels"]:
        for t in x["trainee_detail"]:
            for e in t["errors"]:
                out.append(f"  N={x['n']} trainee {t['idx']} ({t['persona']}): {e}")
            for w in t["db"].get("why", []) if isinstance(t["db"].get("why"), list) else []:
                out.append(f"  N={x['n']} trainee {t['idx']} db: {w}")
    out += ["", figures_table(res["figures"]), f"\nwall {res['wall_s']:.1f} s"]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_N), help="trainees per level")
    ap.add_argument(
        "--turns",
        type=int,
        nargs="+",
        default=None,
        help="agent messages per trainee: one value, or one per --n (default 3, 2 above N=4)",
    )
    ap.add_argument("--max-tokens", type=int, default=40, help="RAPPORT_MAX_TOKENS for the app")
    ap.add_argument("--personas", nargs="+", default=list(DEFAULT_PERSONAS), help="round-robin")
    ap.add_argument("--seed", type=int, default=1, help="RAPPORT_SEED for the app (-1: none)")
    ap.add_argument("--threads", type=int, default=None, help="RAPPORT_N_THREADS for the app")
    ap.add_argument("--url", default=None, help="drive this running app instead of starting one")
    ap.add_argument(
        "--db", default=None, help="with --url: its SQLite file or database URL (lost turns)"
    )
    ap.add_argument("--pid", type=int, default=None, help="with --url: its process, for RSS")
    ap.add_argument(
        "--max-seconds", type=float, default=900.0, help="per level: no new sends after"
    )
    ap.add_argument("--reply-timeout", type=float, default=600.0, help="per reply")
    ap.add_argument("--read", type=float, default=0.0, help="seconds before the first message")
    ap.add_argument("--think", type=float, default=0.0, help="seconds between reply and message")
    ap.add_argument("--ramp", type=float, default=0.0, help="seconds between trainee starts")
    ap.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="vary each --read/--think pause by up to this fraction (0.5: 50%%-150%%), seeded",
    )
    ap.add_argument(
        "--poll",
        type=float,
        default=0.005,
        help="seconds between looks at a streaming reply (the TTFT resolution)",
    )
    ap.add_argument("--no-end", action="store_true", help="don't end (grade) the sessions")
    ap.add_argument("--keep-data", action="store_true", help="keep each level's data dir")
    ap.add_argument(
        "--provider", default="local", choices=["local", "fake"], help=argparse.SUPPRESS
    )
    ap.add_argument("--fake-script", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--app-env",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the started app, e.g. MALLOC_ARENA_MAX=2",
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    a = ap.parse_args(argv)
    res = run(
        a.n,
        a.turns,
        max_tokens=a.max_tokens,
        url=a.url,
        db=a.db,
        pid=a.pid,
        personas=a.personas,
        provider=a.provider,
        fake_script=a.fake_script,
        poll=a.poll,
        app_env=dict(kv.split("=", 1) for kv in a.app_env),
        seed=None if a.seed == -1 else a.seed,
        threads=a.threads,
        max_seconds=a.max_seconds,
        reply_timeout=a.reply_timeout,
        read_s=a.read,
        think_s=a.think,
        jitter=a.jitter,
        ramp_s=a.ramp,
        end=not a.no_end,
        keep_data=a.keep_data,
    )
    path = write_results(NAME, res)
    if a.out:
        a.out.write_text(json.dumps(res, indent=2, default=str) + "\n", encoding="utf-8")
    print(report(res))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
