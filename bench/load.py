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
import json
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.agent_scripts import script_for
from bench.app_process import AppServer, MemWatch, cpu_seconds, model_path
from bench.common import loadavg, machine_info, now_iso, package_version, targets_of, write_results
from bench.load_db import check_db
from bench.load_report import make_figures, progress_line, report, summarise
from bench.load_trainee import Trainee, run_trainee

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


def default_turns(n: int) -> int:
    """3 agent messages per trainee, 2 above N=4 (N=8 x 3 is long on 2 cores)."""
    return 3 if n <= 4 else 2


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
