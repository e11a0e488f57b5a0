"""Glue around llama.cpp itself: the model file's mapped pages, and its log routed to ours."""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Any


def release_mapped_weights(model_path: Path) -> int:
    """Drop this process's resident pages of the memory-mapped model file; returns bytes advised.

    On x86 llama.cpp repacks most Q4_K weights into an interleaved copy at load time (anonymous
    memory) and never reads the mapped original again, yet the pages it read to make the copy
    stay counted in the process's RSS: ~0.7 GiB on Qwen 1.5B. ``MADV_DONTNEED`` on a read-only
    file mapping only unmaps them; tensors still used from the file (token embeddings) fault
    back in from the page cache on first use. Linux only; elsewhere a no-op.
    """
    import sys

    if not sys.platform.startswith("linux"):
        return 0
    try:
        target = str(model_path.resolve())
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        total = 0
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and parts[5].strip() == target and "w" not in parts[1]:
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    if madvise(lo, hi - lo, 4) == 0:  # MADV_DONTNEED
                        total += hi - lo
        return total
    except (OSError, AttributeError, ValueError):
        return 0


# ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line.
# (llama-cpp-python's own callback still maps the older numbering and shows warnings as
# errors while hiding real errors as debug, so it is replaced here.)
_LOG_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
# A warning llama.cpp prints about the shipped Qwen file at every start, for a token type it
# corrects itself: it changes nothing and only alarmed people.
_HARMLESS = (b"control-looking token",)
_log_callback: Any = None
_log_last = logging.DEBUG


def route_llama_log(llama_cpp: Any) -> None:
    """Send llama.cpp's log through Python logging (logger ``llama_cpp``): warnings and
    errors only, known-harmless lines at debug level."""
    global _log_callback
    if _log_callback is not None:
        return
    out = logging.getLogger("llama_cpp")

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: Any) -> None:
        global _log_last
        lvl = _log_last if level == 5 else _LOG_LEVELS.get(level, logging.DEBUG)
        if any(h in text for h in _HARMLESS):
            lvl = logging.DEBUG
        _log_last = lvl
        if lvl >= logging.WARNING and text.strip():
            out.log(lvl, "%s", text.decode("utf-8", "replace").rstrip())

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _log_callback = callback  # llama.cpp keeps only the pointer
