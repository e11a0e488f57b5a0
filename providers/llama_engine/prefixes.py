"""Token prefixes: shared prefixes, a dropped span, and the prompt-prefix states kept on disk
(written and read with llama.cpp's per-sequence state files)."""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("providers.llama_engine")


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _dropped_span(
    held: list[int], want: list[int], min_gain: int, slack: int = 16
) -> tuple[int, int, int] | None:
    """Where ``want`` continues the conversation in ``held`` with a span of its middle removed
    (its oldest turns dropped to fit the context): ``(start, length, matched)``, meaning
    ``held[start + length:][:matched] == want[start:][:matched]``, with ``matched`` at least
    ``min_gain`` and running to the end of ``held`` (give or take ``slack`` tokens: the last
    reply may tokenize differently when read back). None if there is no such span.

    Requiring all of ``held``'s tail keeps another conversation that merely shares a few
    messages (two trainees typing the same thing to one persona) from being taken."""
    start = _common_prefix(held, want)
    if start >= len(want) - 1 or start >= len(held):
        return None
    h = np.asarray(held, dtype=np.int64)
    w = np.asarray(want[start:], dtype=np.int64)
    for at in np.flatnonzero(h[start + 1 :] == w[0]):
        j = int(at) + start + 1
        n = min(len(h) - j, len(w))
        if n < min_gain:
            break
        diff = np.flatnonzero(h[j : j + n] != w[:n])
        matched = int(diff[0]) if len(diff) else n
        if matched >= min_gain and j + matched >= len(h) - slack:
            return start, j - start, matched
    return None


def _token_hash(tokens: list[int]) -> str:
    return hashlib.sha256(np.asarray(tokens, dtype=np.int32).tobytes()).hexdigest()[:20]


class PrefixStates:
    """The index of prompt-prefix states saved on disk (``<length>-<hash>.state`` files in
    ``folder``), at most ``max_files`` of them, least recently used dropped first. With no
    folder, or one that can't be made, nothing is kept and every lookup misses."""

    def __init__(self, folder: Path | None, max_files: int) -> None:
        self.folder = folder
        self.max_files = max_files
        self._known: dict[int, set[str]] = {}  # prefix length -> token hashes on disk
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for p in folder.glob("*.state"):
                n, _, h = p.stem.partition("-")
                if n.isdigit() and h:
                    self._known.setdefault(int(n), set()).add(h)
        except OSError as exc:
            log.warning("prefix states disabled: %s", exc)
            self.folder = None

    def path(self, tokens: list[int]) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"{len(tokens)}-{_token_hash(tokens)}.state"

    def has(self, tokens: list[int]) -> bool:
        return _token_hash(tokens) in self._known.get(len(tokens), set())

    def best(self, tokens: list[int], longer_than: int) -> list[int] | None:
        """The longest saved prefix of ``tokens`` longer than ``longer_than`` (and shorter
        than ``tokens``), or None."""
        for n in sorted(self._known, reverse=True):
            if n <= longer_than or n >= len(tokens):
                continue
            if _token_hash(tokens[:n]) in self._known[n]:
                return tokens[:n]
        return None

    def added(self, tokens: list[int]) -> None:
        """A state for ``tokens`` was just written to :meth:`path`; drop the oldest files."""
        self._known.setdefault(len(tokens), set()).add(_token_hash(tokens))
        self._trim()

    def forget(self, tokens: list[int], path: Path) -> None:
        self._known.get(len(tokens), set()).discard(_token_hash(tokens))
        path.unlink(missing_ok=True)

    def load_into(self, llama_cpp: Any, ctx: Any, seq: int, tokens: list[int]) -> bool:
        """Read the saved state of ``tokens`` into sequence ``seq`` of the llama.cpp context
        ``ctx`` (the caller has cleared it). False if there is none, or the file is damaged or
        holds other tokens (then it is dropped): a cache miss, never an error for the user."""
        path = self.path(tokens)
        if path is None:
            return False
        buf = (llama_cpp.llama_token * len(tokens))()
        count = ctypes.c_size_t(0)
        try:
            n = llama_cpp.llama_state_seq_load_file(
                ctx, str(path).encode(), seq, buf, len(tokens), ctypes.byref(count)
            )
        except Exception as exc:
            log.warning("could not load prefix state %s: %s", path, exc)
            n = 0
        if n == 0 or count.value != len(tokens) or list(buf) != tokens:
            self.forget(tokens, path)
            return False
        os.utime(path)
        return True

    def save_from(self, llama_cpp: Any, ctx: Any, seq: int, tokens: list[int]) -> bool:
        """Write the state of sequence ``seq``, which holds ``tokens``, unless one is kept
        already. True if a file was written."""
        path = self.path(tokens)
        if path is None or self.has(tokens):
            return False
        tmp = path.with_suffix(".tmp")
        buf = (llama_cpp.llama_token * len(tokens))(*tokens)
        try:
            ok = llama_cpp.llama_state_seq_save_file(ctx, str(tmp).encode(), seq, buf, len(tokens))
            if not ok:
                raise OSError("llama_state_seq_save_file failed")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("could not save prefix state %s: %s", path, exc)
            tmp.unlink(missing_ok=True)
            return False
        self.added(tokens)
        return True

    def _trim(self) -> None:
        if self.folder is None:
            return
        files = sorted(self.folder.glob("*.state"), key=lambda p: p.stat().st_mtime)
        for p in files[: max(0, len(files) - self.max_files)]:
            n, _, h = p.stem.partition("-")
            self._known.get(int(n) if n.isdigit() else -1, set()).discard(h)
            p.unlink(missing_ok=True)
