"""The Gradio app: the web tabs of ``web/`` composed into one page, and ``main()``, which
boots the services and serves it.

Each tab is a module of ``web/`` with a handler class and a layout: Practice
(``web/practice_tab.py``, ``web/practice_handlers.py``), History (``web/history_tab.py``),
Import (``web/import_tab.py``), Persona Studio (``web/studio_tab.py``,
``web/studio_handlers.py``) and Disputes (``web/dispute_handlers.py``). Every handler that
returns or changes data resolves the acting user from ``gr.Request`` (``web/access.py``) and
applies the role checks of ``training/users.py`` on the server, because any handler can be
called through the Gradio API, not only from the page.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import gradio as gr

import bootstrap
from common.settings import Settings
from rubric.grader import Grader
from rubric.render import load_reliability, reliability_table
from sim.persona import Persona, PersonaError, library_dir, load_persona_file, persona_paths
from sim.practice import Practice
from training.persona_repo import PersonaRepo
from training.users import UnsafeBind, UserStore, check_bind, gradio_auth
from web.access import Access, Request
from web.dispute_handlers import DisputeHandlers, review_tab
from web.formatting import persona_choices, trainee_choices
from web.history_tab import HistoryHandlers, history_layout, wire_history
from web.import_tab import ImportHandlers, import_layout, wire_import
from web.practice_handlers import PracticeHandlers
from web.practice_tab import practice_layout, wire_practice
from web.studio_handlers import StudioHandlers
from web.studio_tab import studio_layout, wire_studio


class PageLoad(NamedTuple):
    """What opening the page fills in: who is signed in, and the controls for their role."""

    whoami: Any
    studio: Any
    history_trainee: Any
    export_csv: Any
    assign_box: Any
    picker: Any
    assignment: Any
    assign_persona: Any
    assign_to: Any


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

    # --- one handler object per tab ---------------------------------------------------------
    sessions = PracticeHandlers(practice, access, published, get_grader, guidance)
    history = HistoryHandlers(practice, access, published, sessions.on_assignments)
    studio = StudioHandlers(practice, library, access.trainer, published)
    imports = ImportHandlers(practice, get_grader, access.who, access.trainer, studio)
    disputes = DisputeHandlers(store, access.who, access.trainee_names)

    def on_load(request: Request = None) -> PageLoad:
        user = access.who(request)
        offered = persona_choices(published())
        ids = [c[1] for c in offered]
        names = access.trainee_names() if user.is_trainer else []
        if user.is_local:
            banner = "Single-user mode (sign-in off): you can use every tab."
        else:
            banner = f"Signed in as **{user.name}** ({user.role}) · [Sign out](logout)"
        return PageLoad(
            whoami=banner,
            studio=gr.update(visible=user.is_trainer),
            history_trainee=gr.update(
                visible=user.is_trainer and bool(names), choices=trainee_choices(names)
            ),
            export_csv=gr.update(visible=user.is_trainer),
            assign_box=gr.update(visible=user.is_trainer),
            picker=gr.update(choices=offered),
            assignment=sessions.on_assignments(request),
            assign_persona=gr.update(choices=offered, value=ids[0] if ids else None),
            assign_to=gr.update(choices=trainee_choices(names, "All trainees"), value=""),
        )

    # --- layout ---------------------------------------------------------------------------
    with gr.Blocks(title="Rapport — empathy practice") as demo:
        gr.Markdown("# Rapport\nPractise empathy with a simulated customer.")
        whoami = gr.Markdown("", elem_id="whoami")
        practice_ui = practice_layout(practice.personas)
        history_ui = history_layout(practice.personas)
        import_ui = import_layout()
        studio_ui = studio_layout()
        queue_ui = review_tab()
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

        # --- events (the order keeps the Gradio API's endpoint names as they were) ----------
        wire_practice(sessions, practice_ui)
        wire_history(history, history_ui, practice_ui.assignment)
        disputes.wire(
            demo,
            practice_ui.disputes,
            queue_ui,
            practice_ui.session_id,
            practice_ui.feedback,
            history_ui.pick,
            history_ui.replay_rulings,
        )
        wire_studio(studio, studio_ui, practice_ui.picker, history_ui.assign_persona)
        wire_import(
            imports,
            import_ui,
            studio_ui.editor_out,
            lambda e: e.then(studio.studio_list, studio_ui.lib_in, studio_ui.lib_out),
        )
        loaded = PageLoad(
            whoami=whoami,
            studio=studio_ui.tab,
            history_trainee=history_ui.trainee,
            export_csv=history_ui.export_csv,
            assign_box=history_ui.assign_box,
            picker=practice_ui.picker,
            assignment=practice_ui.assignment,
            assign_persona=history_ui.assign_persona,
            assign_to=history_ui.assign_to,
        )
        demo.load(on_load, None, list(loaded)).success(
            sessions.on_page_open, practice_ui.open_in, practice_ui.session_out
        )
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
