"""The Gradio app: thin wiring of ``sim`` (and ``rubric``) functions into Blocks.

Every handler that returns or changes data resolves the acting user from ``gr.Request``
(``request.username``; :data:`training.users.LOCAL_USER` with sign-in off) and applies the role
checks of ``training/users.py`` on the server, because any handler can be called through the
Gradio API, not only from the page. Display helpers live in
``web/formatting.py`` and one ``web/*_view.py`` per tab; the Persona Studio's handlers in
``web/studio_handlers.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import json
import sys
from collections.abc import Callable
from typing import Any

import gradio as gr

import bootstrap
from common.settings import Settings
from rubric.grader import Grader
from rubric.render import load_reliability, reliability_table
from sim.persona import Persona, PersonaError, library_dir, load_persona_file, persona_paths
from sim.practice import Practice
from training.history import (
    export_session_html,
    export_session_json,
    export_session_markdown,
    export_sessions_csv,
    list_history,
    progress,
    session_replay,
)
from training.persona_repo import PersonaRepo
from training.users import (
    UnsafeBind,
    UserError,
    UserStore,
    assign,
    check_bind,
    gradio_auth,
    require_trainer,
)
from web.access import Access, Request, refused
from web.dispute_handlers import DisputeHandlers, review_tab, session_rulings
from web.formatting import (
    archetype_choices,
    dataframe,
    or_none,
    persona_choices,
    status_html,
    trainee_choices,
    write_download,
)
from web.history_view import (
    HISTORY_HEADERS,
    history_choices,
    history_table,
    progress_figure,
    progress_summary,
    replay_feedback_html,
    replay_figure,
    replay_html,
)
from web.import_tab import ImportHandlers, import_layout, wire_import
from web.practice_handlers import PracticeHandlers
from web.practice_tab import practice_layout, wire_practice
from web.studio_handlers import StudioHandlers
from web.studio_tab import studio_layout, wire_studio


def build_app(
    practice: Practice,
    grader: Grader | Callable[[], Grader],
    users: UserStore | None = None,
    repo: PersonaRepo | None = None,
) -> gr.Blocks:
    """Wire the practice, history, studio and grading functions into Blocks.

    ``grader`` may be a factory. ``users`` defaults to the accounts in the practice's store,
    ``repo`` to the persona library in ``settings.persona_dir`` (else the shipped one).
    """
    settings = practice.settings
    store = practice.store
    accounts = users if users is not None else UserStore(store)
    library = repo if repo is not None else PersonaRepo(library_dir(settings))
    access = Access(settings, accounts, store)
    who, trainer = access.who, access.trainer
    _grader: list[Grader] = []

    def get_grader() -> Grader:
        if not _grader:
            _grader.append(grader if isinstance(grader, Grader) else grader())
        return _grader[0]

    def guidance() -> Any:
        try:
            return get_grader().guidance
        except Exception:  # a hint without a cited passage beats no hint
            return None

    def published() -> dict[str, Persona]:
        """The personas on offer now: the library's published files. New or republished ones
        join ``practice.personas``; none leave it, so older sessions still replay."""
        fresh: dict[str, Persona] = {}
        for path in persona_paths(library.root):
            try:
                p = load_persona_file(path)
            except PersonaError:
                continue
            fresh[p.id] = p
        practice.personas.update(fresh)
        return fresh

    personas = practice.personas
    choices = persona_choices(personas)
    first = next(iter(personas), None)
    sessions = PracticeHandlers(practice, access, published, get_grader, guidance)
    on_assignments = sessions.on_assignments

    # --- history ----------------------------------------------------------------------------
    def on_history(archetype: str, trainee: str, request: Request = None) -> tuple[Any, ...]:
        user = who(request)
        subject = trainee or None
        with refused():
            rows = list_history(
                store, user, or_none(archetype), personas=practice.personas, trainee=subject
            )
            data = progress(store, practice.personas, user, or_none(archetype), trainee=subject)
        summary = progress_summary(data)
        if user.is_trainer and not user.is_local and subject is None:
            summary += " Pick a trainee to see their progress (this plot is your own sessions)."
        return (
            dataframe(history_table(rows), HISTORY_HEADERS),
            gr.update(choices=history_choices(rows, user.is_trainer), value=None),
            progress_figure(data, subject),
            summary,
        )

    def on_replay(session_id: str, request: Request = None) -> tuple[Any, ...]:
        user = who(request)
        if not session_id:
            return "", "", gr.update(value=None, visible=False)
        with refused():
            try:
                rp = session_replay(store, practice.personas, user, session_id)
            except KeyError:
                raise gr.Error("There is no such session.", print_exception=False) from None
        return (
            replay_html(rp),
            replay_feedback_html(rp),
            gr.update(value=replay_figure(rp), visible=True),
        )

    def exported(session_id: str, request: Request, kind: str) -> str:
        user = who(request)
        if not session_id:
            raise gr.Error("Open a session first.", print_exception=False)
        with refused():
            try:
                if kind == "json":
                    data = export_session_json(store, user, session_id)
                    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
                elif kind == "md":
                    text = export_session_markdown(store, user, session_id, practice.personas)
                else:
                    text = export_session_html(store, user, session_id, practice.personas)
            except KeyError:
                raise gr.Error("There is no such session.", print_exception=False) from None
        return str(write_download(text, f"rapport-session-{session_id[:8]}.{kind}"))

    def export_json(session_id: str, request: Request = None) -> str:
        return exported(session_id, request, "json")

    def export_markdown(session_id: str, request: Request = None) -> str:
        return exported(session_id, request, "md")

    def export_html(session_id: str, request: Request = None) -> str:
        return exported(session_id, request, "html")

    def export_csv(request: Request = None) -> str:
        user = who(request)
        with refused():
            text = export_sessions_csv(store, user)
        return str(write_download(text, "rapport-sessions.csv"))

    def on_assign(persona_id: str, trainee: str, request: Request = None) -> tuple[Any, ...]:
        user = who(request)
        with refused():
            require_trainer(user)
            if not persona_id or persona_id not in published():
                return status_html("Pick a published customer to assign.", "error"), gr.skip()
            try:
                a = assign(store, user, persona_id, trainee or None)
            except UserError as exc:
                return status_html(str(exc), "error"), gr.skip()
        to = a.assigned_to or "every trainee"
        name = practice.personas[persona_id].name
        return (
            status_html(f"Assigned {name} to {to} as assessment #{a.id}.", "ok"),
            on_assignments(request),
        )

    # --- persona studio (web/studio_handlers.py) ----------------------------------------------
    studio = StudioHandlers(practice, library, trainer, published)
    imports = ImportHandlers(practice, get_grader, who, trainer, studio)  # web/import_tab.py

    # --- on page load: what this user sees ------------------------------------------------
    def on_load(request: Request = None) -> tuple[Any, ...]:
        user = who(request)
        offered = persona_choices(published())
        ids = [c[1] for c in offered]
        names = access.trainee_names() if user.is_trainer else []
        if user.is_local:
            banner = "Single-user mode (sign-in off): you can use every tab."
        else:
            banner = f"Signed in as **{user.name}** ({user.role}) · [Sign out](logout)"
        return (
            banner,
            gr.update(visible=user.is_trainer),
            gr.update(visible=user.is_trainer and bool(names), choices=trainee_choices(names)),
            gr.update(visible=user.is_trainer),
            gr.update(visible=user.is_trainer),
            gr.update(choices=offered),
            on_assignments(request),
            gr.update(choices=offered, value=ids[0] if ids else None),
            gr.update(choices=trainee_choices(names, "All trainees"), value=""),
        )

    # --- layout ---------------------------------------------------------------------------
    with gr.Blocks(title="Rapport — empathy practice") as demo:
        gr.Markdown("# Rapport\nPractise empathy with a simulated customer.")
        whoami = gr.Markdown("", elem_id="whoami")
        practice_ui = practice_layout(personas)

        with gr.Tab("History", id="history") as history_tab:
            with gr.Row():
                hist_archetype = gr.Dropdown(
                    choices=archetype_choices(),
                    value="",
                    label="Customer type",
                    elem_id="history-archetype",
                )
                hist_trainee = gr.Dropdown(
                    choices=trainee_choices([]),
                    value="",
                    label="Trainee",
                    elem_id="history-trainee",
                    visible=False,
                )
                hist_refresh = gr.Button("Refresh", elem_id="history-refresh", scale=0)
            hist_table = gr.Dataframe(
                value=dataframe([], HISTORY_HEADERS),
                headers=HISTORY_HEADERS,
                interactive=False,
                elem_id="history-table",
                label="Past sessions (newest first)",
            )
            progress_plot = gr.Plot(label="Progress", elem_id="progress-plot", format="png")
            progress_text = gr.Markdown("", elem_id="progress-summary")
            hist_pick = gr.Dropdown(
                choices=[],
                label="Open a session",
                elem_id="history-session",
                allow_custom_value=True,
            )
            with gr.Row():
                exp_json = gr.Button("Session JSON", elem_id="export-json", size="sm")
                exp_md = gr.Button("Markdown", elem_id="export-md", size="sm")
                exp_html = gr.Button("HTML", elem_id="export-html", size="sm")
                exp_csv = gr.Button(
                    "All sessions (CSV)", elem_id="export-csv", size="sm", visible=False
                )
            export_file = gr.File(label="Download", elem_id="export-file", interactive=False)
            replay_out = gr.HTML("", elem_id="replay")
            replay_fb = gr.HTML("", elem_id="replay-feedback")
            replay_rulings = session_rulings()
            replay_plot = gr.Plot(
                label="How the customer felt", elem_id="replay-trace", format="png", visible=False
            )
            with gr.Accordion(
                "Assign an assessment (trainers)", open=False, visible=False, elem_id="assign-box"
            ) as assign_box:
                with gr.Row():
                    assign_persona = gr.Dropdown(
                        choices=choices, value=first, label="Customer", elem_id="assign-persona"
                    )
                    assign_to = gr.Dropdown(
                        choices=trainee_choices([], "All trainees"),
                        value="",
                        label="Trainee",
                        elem_id="assign-trainee",
                    )
                    assign_btn = gr.Button("Assign as assessment", elem_id="assign")
                assign_status = gr.HTML("", elem_id="assign-status")

        import_ui = import_layout()

        studio_ui = studio_layout()

        queue_parts = review_tab()

        with gr.Tab("Reliability", id="reliability"):
            rel = load_reliability()
            gr.Markdown(
                "### How far to trust each technique's verdicts\n"
                "Measured by `rapport eval` on labelled conversations the grader was not tuned on.\n\n"
                + (
                    reliability_table(rel)
                    if rel
                    else "No evaluation report yet: run `rapport eval`."
                ),
                elem_id="reliability",
            )

        wire_practice(sessions, practice_ui)

        # --- events: history --------------------------------------------------------------
        hist_out = [hist_table, hist_pick, progress_plot, progress_text]
        hist_in = [hist_archetype, hist_trainee]
        history_tab.select(on_history, hist_in, hist_out, api_name="history")
        hist_refresh.click(on_history, hist_in, hist_out)
        hist_archetype.input(on_history, hist_in, hist_out)
        hist_trainee.input(on_history, hist_in, hist_out)
        hist_pick.input(
            on_replay, hist_pick, [replay_out, replay_fb, replay_plot], api_name="replay"
        )
        exp_json.click(export_json, hist_pick, export_file, api_name="export_json")
        exp_md.click(export_markdown, hist_pick, export_file, api_name="export_markdown")
        exp_html.click(export_html, hist_pick, export_file, api_name="export_html")
        exp_csv.click(export_csv, None, export_file, api_name="export_csv")
        assign_btn.click(
            on_assign,
            [assign_persona, assign_to],
            [assign_status, practice_ui.assignment],
            api_name="assign",
        )

        # --- events: disputes and the trainers' review queue (web/dispute_handlers.py) ------
        disputes = DisputeHandlers(store, who, access.trainee_names)
        disputes.wire(
            demo,
            practice_ui.disputes,
            queue_parts,
            practice_ui.session_id,
            practice_ui.feedback,
            hist_pick,
            replay_rulings,
        )

        # --- events: studio (web/studio_tab.py) ---------------------------------------------
        wire_studio(studio, studio_ui, practice_ui.picker, assign_persona)
        # --- events: import a real conversation (web/import_tab.py) -------------------------
        wire_import(
            imports,
            import_ui,
            studio_ui.editor_out,
            lambda e: e.then(studio.studio_list, studio_ui.lib_in, studio_ui.lib_out),
        )

        demo.load(
            on_load,
            None,
            [
                whoami,
                studio_ui.tab,
                hist_trainee,
                exp_csv,
                assign_box,
                practice_ui.picker,
                practice_ui.assignment,
                assign_persona,
                assign_to,
            ],
        ).success(sessions.on_page_open, practice_ui.open_in, practice_ui.session_out)
        demo.unload(sessions.on_unload)
    return demo


def main(settings: Settings | None = None) -> None:
    from providers.registry import ProviderError

    settings = settings or Settings()
    try:
        check_bind(settings)  # before anything else: never serve an open bind by accident
    except UnsafeBind as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    settings.ensure_dirs()
    limit_malloc_arenas()
    from providers.local import LocalModelError

    # the director scores each turn with the same grader the feedback uses (built below)
    grader: Grader
    try:
        practice = bootstrap.open_practice(
            settings, signals_factory=lambda s: bootstrap.signals_from_grader(grader)
        )
    except PersonaError as exc:
        print(f"error: the persona library has problems:\n{exc}", file=sys.stderr)
        raise SystemExit(1) from None
    try:
        # fail at start, not half-working on the first message: load the model now
        model = practice.model
        load = getattr(model, "load", None)
        if load is not None:
            load()
    except (ProviderError, LocalModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    try:
        grader = Grader.from_settings(settings, judge=_judge(settings))
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: the grader can't start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if grader.guidance is not None and grader.guidance.count() == 0:
        from rubric.guidance import GUIDANCE_DIR

        report = grader.guidance.ingest([GUIDANCE_DIR])
        print(f"Ingested the shipped guidance: {report.chunks_written} chunks")
    users = UserStore(practice.store)
    if settings.auth and not users.list_users():
        print(
            "warning: sign-in is on but there are no accounts yet: add one with "
            "'rapport users add NAME --role trainer'",
            file=sys.stderr,
        )
    repo = PersonaRepo(library_dir(settings))
    demo = build_app(practice, grader, users=users, repo=repo)
    if settings.provider == "local" and settings.local_engine == "batched":
        # read every persona's prompt once, in the background; after the first start the
        # states come from disk and this returns at once (trainees' requests go first)
        for persona in practice.personas.values():
            practice.prewarm(persona)
    # as many replies in flight as the batched engine decodes together
    demo.queue(default_concurrency_limit=max(4, settings.local_slots))
    print(
        f"Rapport is running at http://{settings.host}:{settings.port}  "
        f"(provider: {settings.provider}, sign-in: {'on' if settings.auth else 'off'})"
    )
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        show_error=True,
        auth=gradio_auth(users) if settings.auth else None,
        auth_message="Sign in to Rapport with the account your trainer gave you.",
    )


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas. Gradio serves each request on a worker thread and
    every thread that allocates gets an arena of its own that is rarely given back: with
    several trainees at once that was hundreds of MiB of RSS (measured in bench/load.py).
    A no-op off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        return


def _judge(settings: Settings) -> Any:
    return bootstrap.judge_for(settings)


if __name__ == "__main__":
    main()
