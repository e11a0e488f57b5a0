"""Each package's public surface is pinned by ``__all__``, and other packages keep to it.

- A package ``__init__`` that re-exports names lists exactly those names in ``__all__``,
  and each of them imports.
- Code in one top-level package never imports an underscore name from another.
- Where the module imported from declares ``__all__``, code in another top-level package
  imports only names listed there.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from tests.test_import_cycles import ROOT, top_levels


def shipped() -> list[Path]:
    """Every shipped module (the files of each top-level unit the cycle test walks)."""
    return sorted(f for files in top_levels().values() for f in files)


def top_of(f: Path) -> str:
    return f.relative_to(ROOT).parts[0].removesuffix(".py")


def declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[attr-defined]
    return None


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.exists():
            return cand
    return None


def test_package_inits_list_what_they_re_export() -> None:
    inits = [f for f in shipped() if f.name == "__init__.py"]
    checked = 0
    for init in inits:
        tree = ast.parse(init.read_text(encoding="utf-8"))
        imported = [
            a.asname or a.name
            for n in tree.body
            if isinstance(n, ast.ImportFrom)
            for a in n.names
            if n.module != "__future__"
        ]
        if not imported:
            continue
        defined = {
            t.id
            for n in tree.body
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name) and not t.id.startswith("_")
        }
        names = declared_all(tree)
        rel = init.relative_to(ROOT)
        assert names is not None, f"{rel} re-exports names but has no __all__"
        assert set(names) == set(imported) | defined, f"{rel}: __all__ and its names differ"
        assert len(names) == len(set(names)), f"{rel}: a name is listed twice"
        module = importlib.import_module(".".join(rel.parent.parts))
        missing = [n for n in names if not hasattr(module, n)]
        assert not missing, f"{rel}: {missing}"
        checked += 1
    assert checked >= 5  # sim.guard, training.history, storage, sim.realism, ... are packages now


def test_other_packages_import_only_public_names() -> None:
    problems = []
    for f in shipped():
        tree = ast.parse(f.read_text(encoding="utf-8"))
        me = top_of(f)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            if node.module.split(".")[0] == me or module_file(node.module) is None:
                continue  # the same package, or a third-party module
            target = module_file(node.module)
            assert target is not None
            public = declared_all(ast.parse(target.read_text(encoding="utf-8")))
            for alias in node.names:
                where = f"{f.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}"
                if alias.name.startswith("_"):
                    problems.append(f"{where} is private")
                elif (
                    public is not None
                    and alias.name not in public
                    and module_file(f"{node.module}.{alias.name}") is None  # not a submodule
                ):
                    problems.append(f"{where} is not in its __all__")
    assert not problems, "\n".join(problems)
