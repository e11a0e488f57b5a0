"""Check labelled-turn JSONL files against the second-wave line format (eval/LABELLING.md).

Run: ``python -m eval.data.check_turns FILE...``; prints one line per problem and a label
balance summary, exits 1 on any problem.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

LABELS = {"listen", "validate", "cooperate", "affirm", "dismissive"}
REGISTERS = {
    "plain",
    "terse_chat",
    "long_multipart",
    "non_native",
    "typos",
    "formal_email",
    "spoken",
}
REQUIRED = {
    "id",
    "industry",
    "mood",
    "register",
    "context",
    "agent",
    "labels",
    "rationale",
    "writer",
}
OPTIONAL = {"hard_case", "split", "topic"}


def problems(row: dict, where: str) -> list[str]:
    out = []
    missing = REQUIRED - set(row)
    if missing:
        out.append(f"{where}: missing {sorted(missing)}")
    extra = set(row) - REQUIRED - OPTIONAL
    if extra:
        out.append(f"{where}: unknown keys {sorted(extra)}")
    ctx = row.get("context") or []
    if not ctx or not isinstance(ctx, list):
        out.append(f"{where}: context must be a non-empty list")
    else:
        for t in ctx:
            if (
                set(t) != {"role", "text"}
                or t["role"] not in ("customer", "agent")
                or not t["text"].strip()
            ):
                out.append(f"{where}: bad context turn {t}")
        if ctx[-1].get("role") != "customer":
            out.append(f"{where}: context must end with a customer turn")
    if not str(row.get("agent", "")).strip():
        out.append(f"{where}: empty agent turn")
    labels = row.get("labels", [])
    if not isinstance(labels, list) or set(labels) - LABELS or len(set(labels)) != len(labels):
        out.append(f"{where}: bad labels {labels}")
    if row.get("register") not in REGISTERS:
        out.append(f"{where}: register must be one of {sorted(REGISTERS)}")
    return out


def main(paths: list[str]) -> int:
    bad: list[str] = []
    rows = []
    for p in paths:
        for n, line in enumerate(Path(p).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                bad.append(f"{p}:{n}: not JSON ({e})")
                continue
            bad += problems(row, f"{p}:{n}")
            rows.append(row)
    ids = Counter(r.get("id") for r in rows)
    bad += [f"duplicate id {i}" for i, c in ids.items() if c > 1]
    agents = Counter(r.get("agent", "").strip().lower() for r in rows)
    bad += [f"duplicate agent text: {a[:60]}" for a, c in agents.items() if c > 1]
    for b in bad:
        print(b)
    n = len(rows) or 1
    lab = Counter(lbl for r in rows for lbl in r.get("labels", []))
    print(f"{len(rows)} rows; " + ", ".join(f"{k} {lab[k] / n:.0%}" for k in sorted(LABELS)))
    print(
        f"no label {sum(1 for r in rows if not r.get('labels')) / n:.0%}; "
        f"hard cases {sum(1 for r in rows if r.get('hard_case')) / n:.0%}; "
        f"industries {len({r.get('industry') for r in rows})}; "
        f"registers {dict(Counter(r.get('register') for r in rows))}"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
