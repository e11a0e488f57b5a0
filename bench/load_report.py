"""The load bench's numbers: each level summarised, the figures checked against the issue's
targets, warnings where other load on the machine skewed a level, and the printed report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.common import Figure, figure, figures_table, fmt, percentile, ratio, table
from bench.load_trainee import Trainee

P95_RATIO_TARGET = 3.0  # p95 TTFT at N=4 / the single-user figure
RSS_TARGET_GB = 2.5


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


def progress_line(lv: dict[str, Any]) -> str:
    m = lv["memory"]
    return (
        f"  N={lv['n']}: {lv['replies_ok']} replies, TTFT p50 {fmt(lv['ttft_p50_s'])} s "
        f"p95 {fmt(lv['ttft_p95_s'])} s, errors {lv['errors']}, lost {lv['lost_turns']}, "
        f"wall {lv['wall_s']:.0f} s, RSS peak {fmt(m.get('hwm_mib'))} MiB"
    )


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
