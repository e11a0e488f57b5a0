"""A trainee's history: past sessions, replays, progress over time, exports and hints.

Every function that returns session data takes the acting :class:`~training.users.User` and
applies the role rules of ``training/users.py``: trainees see only their own sessions; trainers
see all, but a *private* session's transcript (and every quote from it) only its owner.
A trainee asking for someone else's session gets :class:`~training.users.PermissionDenied`.

Everything here reads what is already stored with a session: the director's state in the
turn metadata, read typed (``StoredTurn.turn().meta``: agent turns' ``step``, customer turns'
``director_state``), the feedback saved as JSON
(``rubric.feedback.Feedback.model_dump(mode="json")``) and the m003 columns (mode, hints).
Nothing grades or calls a model.

Modules: ``records`` (reading one stored session), ``listing`` (the list and a replay),
``progress``, ``exports`` and ``hints``.
"""

from training.history.exports import (
    HTML_RENDERERS,
    Block,
    Seg,
    export_session_html,
    export_session_json,
    export_session_markdown,
    export_sessions_csv,
    to_markdown,
    to_plain_html,
)
from training.history.hints import (
    HIGH_DISTRESS,
    HINT_TEXT,
    GuidanceSearch,
    Hint,
    HintsDisabled,
    choose_hint,
    hint_for,
)
from training.history.listing import HistoryRow, Replay, ReplayTurn, list_history, session_replay
from training.history.progress import (
    MOOD_COLOUR,
    TECHNIQUE_COLOURS,
    ProgressData,
    ProgressPoint,
    ProgressSeries,
    plot_progress,
    progress,
)
from training.history.records import (
    HIDDEN_NOTE,
    REAL_MODE,
    REAL_NAME,
    Mode,
    Outcome,
    Personas,
    final_mood,
    final_state,
    redact_feedback,
    session_outcome,
    session_steps,
    technique_status,
    techniques_used,
)

__all__ = [
    "HIDDEN_NOTE",
    "HIGH_DISTRESS",
    "HINT_TEXT",
    "HTML_RENDERERS",
    "MOOD_COLOUR",
    "REAL_MODE",
    "REAL_NAME",
    "TECHNIQUE_COLOURS",
    "Block",
    "GuidanceSearch",
    "Hint",
    "HintsDisabled",
    "HistoryRow",
    "Mode",
    "Outcome",
    "Personas",
    "ProgressData",
    "ProgressPoint",
    "ProgressSeries",
    "Replay",
    "ReplayTurn",
    "Seg",
    "choose_hint",
    "export_session_html",
    "export_session_json",
    "export_session_markdown",
    "export_sessions_csv",
    "final_mood",
    "final_state",
    "hint_for",
    "list_history",
    "plot_progress",
    "progress",
    "redact_feedback",
    "session_outcome",
    "session_replay",
    "session_steps",
    "technique_status",
    "techniques_used",
    "to_markdown",
    "to_plain_html",
]
