"""The chat latency bench's figures, checked against the issue's targets, and its printed
report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from bench.chat_paths import TurnTiming
from bench.common import Figure, figure, figures_table, fmt, ratio, table

TTFT_TURN5_TARGET_S = 1.5
APP_OVER_RAW_TARGET = 1.10
REALISM_ON_OFF_TARGET = 1.10


def sum_or_none(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) if len(vals) == len(xs) else None


class Totals(NamedTuple):
    """The app's and the raw stream's sums over a chat's turns."""

    app_ttft: float | None
    raw_ttft: float | None
    app_total: float
    raw_total: float
    app_tps: float | None
    raw_tps: float | None


def totals(app: Sequence[TurnTiming], raw: Sequence[TurnTiming]) -> Totals:
    """TTFT and total time summed over the turns, and tokens per second, app and raw."""
    app_total = sum(t.total_s for t in app)
    raw_total = sum(t.total_s for t in raw)
    return Totals(
        app_ttft=sum_or_none([t.ttft_s for t in app]),
        # The app shows a reply a checked sentence at a time, so its TTFT is compared with the
        # raw stream's first complete sentence; the raw first token is kept in the JSON.
        raw_ttft=sum_or_none([t.ttft_sentence_s for t in raw]),
        app_total=app_total,
        raw_total=raw_total,
        app_tps=ratio(sum(t.tokens for t in app), app_total),
        raw_tps=ratio(sum(t.tokens for t in raw), raw_total),
    )


def make_figures(
    app: Sequence[TurnTiming],
    raw: Sequence[TurnTiming],
    off: Sequence[TurnTiming],
    cost: list[dict[str, Any]] | None,
    pre: dict[str, Any] | None,
    inter: dict[str, Any] | None,
    turns: int,
    interleave_turns: int,
) -> list[Figure]:
    """Every figure of a run, from the per-turn timings and the checks' results."""
    app_ttft, raw_ttft, app_total, raw_total, app_tps, raw_tps = totals(app, raw)
    last = turns

    figs: list[Figure] = [
        figure(
            f"turn-{n} TTFT (app)",
            a.ttft_s,
            "s",
            baseline=r.ttft_sentence_s,
            baseline_name="raw llama-cpp-python's first complete sentence, same prompt",
            target=TTFT_TURN5_TARGET_S if n == 5 else None,
        )
        for n, (a, r) in enumerate(zip(app, raw, strict=True), 1)
    ]
    figs += [
        figure(
            f"TTFT sum turns 1-{last} (app)",
            app_ttft,
            "s",
            baseline=raw_ttft,
            baseline_name="raw llama-cpp-python, first complete sentence",
            target=APP_OVER_RAW_TARGET,
            target_on="ratio",
        ),
        figure(
            f"total time sum turns 1-{last} (app)",
            app_total,
            "s",
            baseline=raw_total,
            baseline_name="raw llama-cpp-python",
            target=APP_OVER_RAW_TARGET,
            target_on="ratio",
        ),
        figure(
            f"CPU time sum turns 1-{last} (app)",
            sum(t.cpu_s for t in app),
            "s",
            baseline=sum(t.cpu_s for t in raw),
            baseline_name="raw llama-cpp-python",
            note="process CPU time: a cross-check that other load on the machine inflates less",
        ),
        figure(
            "tokens/s incl. TTFT (app)",
            app_tps,
            "tok/s",
            baseline=raw_tps,
            baseline_name="raw llama-cpp-python",
        ),
    ]
    if off:
        five = min(5, len(app))
        figs.append(
            figure(
                f"turn-{five} first-sentence latency, realism checks on (app)",
                app[five - 1].ttft_s,
                "s",
                baseline=off[five - 1].ttft_s,
                baseline_name="same turn, app path with the realism checks off",
                target=REALISM_ON_OFF_TARGET,
                target_on="ratio",
            )
        )
        extra = cost[five - 1]["first_extra_s"] if cost else None  # the checks alone, timed
        figs.append(
            figure(
                f"turn-{five} first-sentence latency off + the checks' own time",
                None if extra is None else (off[five - 1].ttft_s or 0.0) + extra,
                "s",
                baseline=off[five - 1].ttft_s,
                baseline_name="app path with the realism checks off (bench/realism_cost.py)",
                target=REALISM_ON_OFF_TARGET,
                target_on="ratio",
            )
        )
        figs.append(
            figure(
                f"TTFT sum turns 1-{last}, realism checks on (app)",
                app_ttft,
                "s",
                baseline=sum_or_none([t.ttft_s for t in off]),
                baseline_name="app path with the realism checks off",
            )
        )
    if pre is not None:
        figs += [
            figure(
                "turn-1 TTFT after prewarm (app)",
                pre["turn1"]["ttft_s"],
                "s",
                baseline=app[0].ttft_s,
                baseline_name="turn-1 TTFT without prewarm",
            ),
            figure("prewarm duration (background)", pre["warm_s"], "s"),
        ]
    if inter is not None:
        figs += [
            figure(
                f"interleaved TTFT sum turns 2-{interleave_turns}, 2 sessions, cache on",
                inter["ttft_sum_on_s"],
                "s",
                baseline=inter["ttft_sum_off_s"],
                baseline_name="same with the RAM cache off",
            ),
        ]
        for pid, s in inter["sessions"].items():
            for row in s["turns"]:
                figs.append(
                    figure(
                        f"interleaved turn-{row['turn']} TTFT {pid}, cache on",
                        row["ttft_on_s"],
                        "s",
                        baseline=row["ttft_off_s"],
                        baseline_name="cache off",
                    )
                )
        ce = inter["cache_entry"]
        figs.append(
            figure(
                "RAM per cache entry (state + logits copy)",
                (ce["llama_state_bytes"] + ce["scores_bytes"]) / 2**20,
                "MiB",
                baseline=ce["llama_state_bytes"] / 2**20,
                baseline_name="llama.cpp state blob alone",
            )
        )
    return figs


def report(res: dict[str, Any]) -> str:
    rows = []
    for t in res["turns"]:
        a, r = t["app"], t["raw"]
        rows.append(
            [
                t["turn"],
                a["prefill_tokens"],
                a["ttft_s"],
                r["ttft_s"],
                t["ttft_ratio"],
                a["total_s"],
                r["total_s"],
                t["total_ratio"],
                a["tokens"],
                r["tokens"],
                a["decode_tokens_per_s"],
                a["cache_loads"],
                a["cores_busy"],
                r["cores_busy"],
                "yes" if t["same_text"] else "no",
            ]
        )
    head = [
        "turn",
        "prefill",
        "ttft app",
        "ttft raw",
        "ratio",
        "total app",
        "total raw",
        "ratio",
        "tok app",
        "tok raw",
        "decode tok/s",
        "cache loads",
        "cores app",
        "cores raw",
        "same text",
    ]
    out = [
        f"chat_latency  model={res['model_file']}  nproc={res['nproc']}  "
        f"threads={res['config']['n_threads']}  loadavg={res['machine']['loadavg_start']}"
        f"->{res['machine']['loadavg_end']}  cache={res['config']['app_cache_class']} "
        f"{res['config']['app_cache_capacity_bytes'] / 2**20:.0f} MiB",
        "",
        table(rows, head),
    ]
    s = res["summary"]
    out.append(
        f"\nsum TTFT app {fmt(s['app_ttft_sum_s'])} s vs raw {fmt(s['raw_ttft_sum_s'])} s "
        f"(x{fmt(s['ttft_ratio'])});  sum total app {fmt(s['app_total_sum_s'])} s vs raw "
        f"{fmt(s['raw_total_sum_s'])} s (x{fmt(s['total_ratio'])})"
    )
    if s.get("realism_turn5_ttft_ratio") is not None:
        rows = [
            [
                t["turn"],
                t["app"]["ttft_s"],
                t["app_realism_off"]["ttft_s"],
                t["realism_ttft_ratio"],
                t["app"]["cpu_s"],
                t["app_realism_off"]["cpu_s"],
                "yes" if t["realism_same_text"] else "no",
            ]
            for t in res["turns"]
        ]
        out += [
            "\nrealism checks on vs off (app path, first released sentence):",
            table(
                rows, ["turn", "ttft on", "ttft off", "on/off", "cpu on", "cpu off", "same text"]
            ),
            f"turn-{s['realism_turn']} first-sentence latency ratio on/off: "
            f"x{fmt(s['realism_turn5_ttft_ratio'])} (target <= {REALISM_ON_OFF_TARGET:.2f}); "
            f"CPU time on/off x{fmt(s['realism_turn5_cpu_ratio'])}; the checks alone add "
            f"{fmt(1000 * (s['realism_turn5_check_extra_s'] or 0))} ms to the first sentence",
        ]
    pre = res["prewarm"]
    if pre is not None:
        out.append(
            f"prewarm: warm {fmt(pre['warm_s'])} s ({pre['warm_prefill_tokens']} tokens), then "
            f"turn-1 TTFT {fmt(pre['turn1']['ttft_s'])} s (prefill "
            f"{pre['turn1']['prefill_tokens']}) vs {fmt(res['turns'][0]['app']['ttft_s'])} s cold"
        )
    inter = res["interleave"]
    if inter is not None:
        rows = []
        for pid, sess in inter["sessions"].items():
            for row in sess["turns"]:
                rows.append(
                    [
                        pid,
                        row["turn"],
                        row["ttft_on_s"],
                        row["ttft_off_s"],
                        row["ratio_on_off"],
                        row["prefill_on"],
                        row["prefill_off"],
                        row["cache_load_on_s"],
                    ]
                )
        out += [
            "\ninterleaved sessions (RAM cache on vs off):",
            table(
                rows,
                [
                    "session",
                    "turn",
                    "ttft on",
                    "ttft off",
                    "on/off",
                    "prefill on",
                    "prefill off",
                    "cache load s",
                ],
            ),
        ]
        ce = inter["cache_entry"]
        out.append(
            f"cache entry: llama state {ce['llama_state_bytes'] / 2**20:.1f} MiB + logits copy "
            f"{ce['scores_bytes'] / 2**20:.1f} MiB; cache counts "
            f"{ce['cache_size_counted_bytes'] / 2**20:.1f} MiB for {ce['entries_after_on_run']} "
            f"entries; RSS {ce['rss_mib_before_on_run']} -> {ce['rss_mib_after_on_run']} MiB"
        )
    out += ["", figures_table(res["figures"]), f"\nwall {res['wall_s']:.1f} s"]
    return "\n".join(out)
