"""The ``rulings`` suite: how far the grader agrees with trainers' rulings on disputed
verdicts, and how often each technique's verdicts are disputed at all.

A ruling labels one technique on one agent turn (``training/disputes.py``). The suite grades each
ruled turn again with the grader under test and scores it against the ruling: κ and F1 per
technique with their support (the same :func:`eval.suites.validity` as the other suites).
Rulings the grader was fitted on (their ids are in the turn model's card) are left out, so
the figures stay held out. Disputed verdicts are, by selection, the ones a trainee thought
wrong: agreement here reads lower than on a random sample, and says where to look.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from eval.suites import Options, score_records
from rubric.grader import Grader
from rubric.render import MIN_RULINGS


def suite_rulings(
    grader: Grader,
    opts: Options,
    records: Sequence[dict[str, Any]],
    dispute_rates: dict[str, dict[str, Any]],
    fitted: Collection[str] = (),
    skipped_private: int = 0,
) -> dict[str, Any]:
    """Agreement with rulings per technique, and the dispute rate per technique.

    ``records`` are ``rapport rulings export`` lines; any whose id is in ``fitted`` is left
    out (and counted). A technique with fewer than :data:`MIN_RULINGS` scored rulings gets
    its count but no κ or F1."""
    fitted_ids = set(fitted)
    kept = [r for r in records if r.get("id") not in fitted_ids]
    held = kept[: opts.limit]
    scored = score_records(grader, held, opts, "rulings")
    per: dict[str, Any] = {}
    for t in grader.technique_ids:
        m = scored["metrics"][t]
        n = sum(1 for i in scored["items"] if i["technique"] == t and i["pred"] is not None)
        enough = n >= MIN_RULINGS
        rate = dispute_rates.get(t, {})
        per[t] = {
            "rulings": sum(1 for i in scored["items"] if i["technique"] == t),
            "scored": n,
            "enough": enough,
            "f1": m["f1"] if enough else None,
            "f1_ci": m["f1_ci"] if enough else None,
            "kappa": m["kappa"] if enough else None,
            "kappa_ci": m["kappa_ci"] if enough else None,
            "precision": m["precision"] if enough else None,
            "recall": m["recall"] if enough else None,
            "support": m["support"],
            "abstain_rate": m["abstain_rate"],
            "verdicts": rate.get("verdicts", 0),
            "disputes": rate.get("disputes", 0),
            "dispute_rate": rate.get("dispute_rate"),
            "overturn_rate": rate.get("overturn_rate"),
        }
    return {
        "min_rulings": MIN_RULINGS,
        "rulings": len(held),
        "left_out_fitted": len(records) - len(kept),
        "skipped_private": skipped_private,
        "per_technique": per,
        "items": scored["items"],
    }


def rulings_markdown(res: dict[str, Any]) -> list[str]:
    """The report's section on rulings."""

    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    lines = [
        "## Trainer rulings on disputed verdicts",
        "",
        f"{res['rulings']} ruling(s) scored; {res['left_out_fitted']} left out because the grader "
        f"was fitted on them; {res['skipped_private']} on private turns the trainee did not share "
        f"(never exported). κ and F1 are shown from {res['min_rulings']} scored rulings per "
        "technique. Disputed verdicts are the ones trainees doubted, so expect lower agreement "
        "than on a random sample.",
        "",
        "| technique | rulings | κ | F1 | support | dispute rate | overturned |",
        "|---|---|---|---|---|---|---|",
    ]
    for t, c in res["per_technique"].items():
        rate = "n/a" if c["dispute_rate"] is None else f"{c['dispute_rate']:.1%}"
        over = "n/a" if c["overturn_rate"] is None else f"{c['overturn_rate']:.0%}"
        lines.append(
            f"| {t} | {c['scored']} | {f(c['kappa'])} | {f(c['f1'])} | {c['support']} "
            f"| {rate} ({c['disputes']} of {c['verdicts']}) | {over} |"
        )
    return [*lines, ""]
