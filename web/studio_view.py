"""What the Persona Studio shows besides the form: the library and versions tables, the
version picker, the probe check's report and when Publish is enabled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from web.formatting import archetype_label, esc, short_date

LIBRARY_HEADERS = ["Id", "Name", "Type", "Difficulty", "Status", "Version", "Problems"]


def library_table(summaries: Sequence[Any]) -> list[list[str]]:
    """Rows for the Studio library from :class:`training.persona_repo.PersonaSummary` objects."""
    out = []
    for s in summaries:
        status = s.status + (" (changed)" if s.unpublished_changes else "")
        out.append(
            [
                s.id,
                s.name,
                archetype_label(s.archetype) if s.archetype else "",
                s.difficulty or "",
                status,
                "" if s.latest_version is None else f"v{s.latest_version}",
                str(len(s.problems)) if s.problems else "",
            ]
        )
    return out


VERSION_HEADERS = ["Version", "Saved", "Author", "Note", "Published", "Live", "Override reason"]


def versions_table(infos: Sequence[Any]) -> list[list[str]]:
    """Rows for the versions list, newest first, from :class:`VersionInfo` objects."""
    return [
        [
            f"v{i.version}",
            short_date(i.saved_at),
            i.author,
            i.note,
            "yes" if i.published else "",
            "live" if i.live else "",
            i.override_reason or "",
        ]
        for i in reversed(list(infos))
    ]


def version_choices(infos: Sequence[Any]) -> list[tuple[str, int]]:
    return [
        (
            f"v{i.version} · {i.author} · {short_date(i.saved_at)}"
            + (" · live" if i.live else " · published" if i.published else ""),
            i.version,
        )
        for i in reversed(list(infos))
    ]


def check_report_html(report: Any) -> str:
    """A :class:`sim.probe_check.CheckReport` as a PASS/FAIL list (with any parts)."""
    rows = []
    for c in report.checks:
        word = "PASS" if c.passed else "FAIL"
        colour = "#1e6b34" if c.passed else "#a52a1a"
        parts = "".join(
            f"<li>{'PASS' if p.passed else 'FAIL'} {esc(p.name)}: {esc(p.detail)}</li>"
            for p in c.parts
        )
        rows.append(
            f'<li class="rp-check" data-check="{esc(c.name)}" data-passed="{str(c.passed).lower()}">'
            f'<b style="color:{colour}">{word}</b> <b>{esc(c.name)}</b>: {esc(c.detail)}'
            + (f"<ul>{parts}</ul>" if parts else "")
            + "</li>"
        )
    failed = sum(not c.passed for c in report.checks)
    head = (
        f"All {len(report.checks)} checks passed"
        if not failed
        else f"{failed} of {len(report.checks)} checks failed: fix the persona, or publish "
        "with a written override reason"
    )
    return (
        f'<div class="rp-check-report" data-passed="{str(not failed).lower()}">'
        f"<p><b>{esc(report.persona_id)}</b> (text {esc(report.persona_version)}): {esc(head)}.</p>"
        f"<ul>{''.join(rows)}</ul></div>"
    )


def can_publish(check_passed: bool, override_reason: str | None) -> bool:
    """Publish is enabled with a passed check for the version, or a written reason."""
    return bool(check_passed) or bool((override_reason or "").strip())


__all__ = [
    "LIBRARY_HEADERS",
    "VERSION_HEADERS",
    "can_publish",
    "check_report_html",
    "library_table",
    "version_choices",
    "versions_table",
]
