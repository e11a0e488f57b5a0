"""A handler's outputs as a named record.

Each event that fills several components returns a ``NamedTuple`` whose fields name them. The
layout builds the event's outputs list from the same record, with the components as the
values, so values and components are matched by name in one place. A record is a tuple, so
Gradio (and a caller of the handler) reads it like any other.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import gradio as gr

R = TypeVar("R")


def only(record: type[R], **values: Any) -> R:
    """A ``record`` with ``values`` set and every other output left as it is (``gr.skip()``)."""
    fields: tuple[str, ...] = getattr(record, "_fields")  # noqa: B009
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise TypeError(f"{record.__name__} has no output {unknown}")
    return cast(Any, record)(**{f: values.get(f, gr.skip()) for f in fields})


__all__ = ["only"]
