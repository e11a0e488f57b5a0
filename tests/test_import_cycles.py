"""No import cycle between the top-level packages and modules (app, cli, bootstrap, common,
sim, rubric, eval, bench and any added later).

Every import is counted, at module level or inside a function (lazy imports are how two
packages usually end up needing each other) and under ``TYPE_CHECKING``: the edge
``sim -> rubric`` means some module in ``sim/`` imports something from ``rubric``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_CODE = {"tests", "build", "docs"}

# Edges that closed the cycles known when this test was written (issue 15), to be removed:
# the graph without them must have no cycle, so any new cycle fails; a listed edge that no
# longer exists fails too (take it off the list).
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()


def top_levels() -> dict[str, list[Path]]:
    """Each top-level module or package of the repository and its files."""
    units = {p.stem: [p] for p in ROOT.glob("*.py") if p.stem not in ("setup", "conftest")}
    for init in ROOT.glob("*/__init__.py"):
        if init.parent.name not in NOT_CODE:
            units[init.parent.name] = sorted(init.parent.rglob("*.py"))
    return units


def edges(units: dict[str, list[Path]], modules: bool = False) -> dict[tuple[str, str], list[str]]:
    """(importer, imported) -> the ``file:line`` places that make the edge; with ``modules``,
    the imported side is the full module name."""
    found: dict[tuple[str, str], list[str]] = {}
    for unit, files in units.items():
        for path in files:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in units and top != unit:
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        found.setdefault((unit, name if modules else top), []).append(where)
    return found


def cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: set[tuple[str, ...]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.add(tuple(sorted(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}}
    assert cycles(graph) == {("a", "b", "c"), ("e", "f")}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def test_every_top_level_package_is_walked() -> None:
    units = top_levels()
    assert {"app", "cli", "sim", "rubric", "eval"} <= set(units)
    assert "tests" not in units


def test_no_import_cycle_between_top_level_packages() -> None:
    found = edges(top_levels())
    graph: dict[str, set[str]] = {}
    for a, b in found:
        if (a, b) not in KNOWN_CYCLE_EDGES:
            graph.setdefault(a, set()).add(b)
    got = cycles(graph)

    def explain(cycle: tuple[str, ...]) -> str:
        lines = [" <-> ".join(cycle)]
        for (a, b), where in sorted(found.items()):
            if a in cycle and b in cycle and (a, b) not in KNOWN_CYCLE_EDGES:
                lines.append(f"  {a} -> {b}: {', '.join(where[:4])}")
        return "\n".join(lines)

    assert not got, "import cycles between top-level packages:\n" + "\n".join(
        explain(c) for c in sorted(got)
    )
    gone = sorted(KNOWN_CYCLE_EDGES - set(found))
    assert not gone, f"these edges are gone now; take them off KNOWN_CYCLE_EDGES: {gone}"


def test_the_simulation_reads_no_data_from_eval_or_the_web_app() -> None:
    """``sim`` depends on neither ``eval`` nor ``web`` through data files either: no path in
    it is built from those folders (the probe messages live in ``sim/guard/``)."""
    import re

    pattern = re.compile(r"""/\s*["'](?:eval|web)["']|["'](?:eval|web)/""")
    found = [
        f"{f.relative_to(ROOT)}:{n}"
        for f in sorted((ROOT / "sim").rglob("*.py"))
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, found


# The layers, bottom up, as the README's "How it fits together" lists them: a package may
# import only from layers below it.
LAYERS = [
    "common",
    "providers",
    "storage",
    "sim",
    "rubric",
    "training",
    "eval",
    "web",
    "bootstrap",
    "app",
    "cli",
    "bench",
]


def test_packages_import_only_from_the_layers_below() -> None:
    units = top_levels()
    unlisted = sorted(set(units) - set(LAYERS))
    assert not unlisted, f"place these in LAYERS (and the README's map): {unlisted}"
    upward = {
        f"{a} -> {b}": where[:3]
        for (a, b), where in edges(units).items()
        if LAYERS.index(b) > LAYERS.index(a)
    }
    assert not upward, upward
