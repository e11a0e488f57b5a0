"""The ``rapport`` command line. Subcommands import their modules lazily to start fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Rapport: empathy practice.")
personas_app = typer.Typer(no_args_is_help=True, help="List, validate and check personas.")
model_app = typer.Typer(no_args_is_help=True, help="The embedded model file.")
app.add_typer(personas_app, name="personas")
app.add_typer(model_app, name="model")
rubric_app = typer.Typer(no_args_is_help=True, help="The grading rubric.")
app.add_typer(rubric_app, name="rubric")
rulings_app = typer.Typer(no_args_is_help=True, help="Trainers' rulings on disputed verdicts.")
app.add_typer(rulings_app, name="rulings")


def _settings() -> object:
    from common.settings import Settings

    return Settings()


@personas_app.command("list")
def personas_list() -> None:
    """List the persona library."""
    from sim.persona import PersonaError, library_dir, load_personas

    try:
        personas = load_personas(library_dir())
    except PersonaError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for p in personas.values():
        typer.echo(
            f"{p.id:32} {p.archetype.value:17} {p.difficulty:7} {p.name} ({p.scenario.company})"
        )


@personas_app.command("validate")
def personas_validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders; default: the library.")
    ] = None,
) -> None:
    """Validate persona files; print ``file: field: problem`` lines and exit 1 on errors."""
    from sim.persona import PersonaError, library_dir, load_persona_file, persona_paths

    files: list[Path] = []
    for p in paths or [library_dir()]:
        files.extend(persona_paths(p) if p.is_dir() else [p])
    problems: list[str] = []
    for f in files:
        try:
            load_persona_file(f)
        except PersonaError as exc:
            problems.extend(exc.problems)
    for line in problems:
        typer.echo(line)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{len(files)} persona file(s) valid")


@personas_app.command("check")
def personas_check(
    persona: Annotated[str, typer.Argument(help="Persona id (see `rapport personas list`).")],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (rapport.check/1).")
    ] = False,
) -> None:
    """Play probe agents (dismissive, ideal, fact questions, off-topic probes) against a
    persona with the configured model; print PASS/FAIL per check and exit 1 if any fails."""
    import json
    import tempfile

    import bootstrap
    from common.settings import Settings
    from providers.registry import ProviderError
    from sim.persona import PersonaError, library_dir, load_personas
    from sim.practice import Practice
    from sim.probe_check import check_persona, render_text
    from sim.simulator import SimulatorError
    from storage import SessionStore

    settings = Settings()
    try:
        personas = load_personas(library_dir(settings))
    except PersonaError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if persona not in personas:
        typer.echo(f"error: no persona '{persona}'; see `rapport personas list`", err=True)
        raise typer.Exit(2)
    settings.ensure_dirs()
    # Check sessions go to a throwaway store, not the trainee's history.
    with tempfile.TemporaryDirectory(prefix="rapport-check-") as tmp:
        practice = Practice(
            settings, SessionStore(Path(tmp) / "sessions.db"), personas, **bootstrap.grading()
        )
        try:
            report = check_persona(practice, persona)
        except (ProviderError, SimulatorError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            practice.store.close()
    typer.echo(
        json.dumps(report.model_dump(mode="json"), ensure_ascii=False)
        if json_out
        else render_text(report)
    )
    if not report.passed:
        raise typer.Exit(1)


@model_app.command("prepare")
def model_prepare() -> None:
    """Join the GGUF parts into the data dir once and verify its sha256."""
    from tqdm import tqdm

    from common.settings import Settings
    from providers.model_files import ModelFileError, prepare

    s = Settings()
    bar = tqdm(total=0, unit="part", desc="Assembling model", disable=None)

    def progress(n: int, total: int) -> None:
        bar.total = total
        bar.update(1)

    try:
        path = prepare(s.models_dir, progress=progress)
    except ModelFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        bar.close()
    typer.echo(f"model ready: {path}")


@model_app.command("warm")
def model_warm() -> None:
    """Read every persona's prompt once with the embedded model and keep the states on disk
    (the cache dir), so the first reply of any session starts in about a second. The app
    does this in the background at start; run it ahead on a new machine or after editing
    personas."""
    from common.settings import Settings
    from providers.local import LlamaCppChat, LocalModelError
    from providers.registry import ProviderError, get_chat_model
    from sim.persona import PersonaError, library_dir, load_personas
    from sim.prompt import Message, build_messages

    s = Settings()
    try:
        model = get_chat_model(s)
        if not isinstance(model, LlamaCppChat) or model.engine != "batched":
            typer.echo("nothing to warm: only the embedded model's batched engine keeps states")
            return
        personas = load_personas(library_dir(s))
        engine = model.batched_engine()
    except (ProviderError, LocalModelError, PersonaError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    before = engine.stats.prefix_saves
    for p in personas.values():
        model.warm(build_messages(p, [Message("customer", p.opening_line)]))
    engine.wait_idle()
    typer.echo(
        f"{len(personas)} persona prompt(s): {engine.stats.prefix_saves - before} read and "
        f"saved, the rest already on disk ({s.prefix_cache_dir})"
    )


@app.command()
def chat(
    persona: Annotated[str, typer.Option("--persona", "-p", help="Persona id")],
    resume: Annotated[str | None, typer.Option(help="Resume this session id")] = None,
) -> None:
    """Practise in the terminal against the same simulator the app uses."""
    import bootstrap
    from common.settings import Settings
    from sim.practice import InputRejected
    from sim.simulator import SimulatorError

    practice = bootstrap.open_practice(Settings())
    if persona not in practice.personas:
        typer.echo(f"error: unknown persona {persona!r}; see 'rapport personas list'", err=True)
        raise typer.Exit(2)
    session = practice.resume(resume) if resume else practice.start(persona)
    p = session.persona
    typer.echo(f"[{p.name} · {p.scenario.company} · {p.difficulty}] {p.trainee_brief}")
    typer.echo("Type your replies as the agent. /end finishes the session.\n")
    for t in session.record.turns:
        typer.echo(f"{'Customer' if t.role == 'customer' else 'You'}: {t.text}")
    while True:
        try:
            text = input("You: ")
        except EOFError:
            break
        if text.strip() == "/end":
            break
        if not text.strip():
            continue
        try:
            sys.stdout.write("Customer: ")
            last = ""
            for partial in session.respond(text):
                if partial.startswith(last):
                    sys.stdout.write(partial[len(last) :])
                else:
                    sys.stdout.write("\n(rephrased) " + partial)
                sys.stdout.flush()
                last = partial
            sys.stdout.write("\n")
        except InputRejected as exc:
            typer.echo(f"\n{exc}")
        except SimulatorError as exc:
            typer.echo(f"\n{exc}\nYour message is saved; send it again to retry.", err=True)
    session.end()
    typer.echo(f"\nSession {session.id} saved.")


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="md, txt, html or pdf files or folders")
    ] = None,
    shipped: Annotated[
        bool, typer.Option("--shipped", help="Ingest the shipped guidance/ corpus")
    ] = False,
    quiet_if_unchanged: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Add guidance to the Chroma store. Re-ingesting an unchanged file adds nothing."""
    from tqdm import tqdm

    from common.settings import Settings
    from rubric.guidance import GUIDANCE_DIR, GuidanceStore

    targets = list(paths or []) + ([GUIDANCE_DIR] if shipped else [])
    if not targets:
        typer.echo("error: give PATHs or --shipped", err=True)
        raise typer.Exit(2)
    missing = [p for p in targets if not p.exists()]
    if missing:
        typer.echo(f"error: not found: {', '.join(map(str, missing))}", err=True)
        raise typer.Exit(2)
    settings = Settings()
    settings.ensure_dirs()
    store = GuidanceStore(settings)
    bar = tqdm(desc="Ingesting", unit="file", disable=None)

    def tick(source: str) -> None:
        bar.update(1)

    report = store.ingest(targets, progress=tick)
    bar.close()
    for src, n in report.added.items():
        typer.echo(f"added     {src} ({n} chunks)")
    for src, n in report.replaced.items():
        typer.echo(f"replaced  {src} ({n} chunks)")
    for src, why in report.skipped.items():
        typer.echo(f"skipped   {src}: {why}")
    for problem in report.errors:
        typer.echo(f"error     {problem}", err=True)
    if report.unchanged and not quiet_if_unchanged:
        typer.echo(f"unchanged {len(report.unchanged)} file(s)")
    if not quiet_if_unchanged or report.chunks_written:
        typer.echo(f"store now holds {store.count()} chunks")
    if report.errors:
        raise typer.Exit(1)


@app.command()
def grade(
    input: Annotated[Path, typer.Argument(help="JSONL: {id, turns: [{role, text}]} per line")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output JSONL")],
) -> None:
    """Grade transcripts offline. The input and output formats are stable."""
    import json

    from tqdm import tqdm

    import bootstrap
    from common.settings import Settings

    lines = input.read_text(encoding="utf-8").splitlines()
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            turns = rec["turns"]
            if not isinstance(rec["id"], str) or not all(
                t["role"] in ("customer", "agent") and isinstance(t["text"], str) for t in turns
            ):
                raise ValueError(
                    "id must be a string; each turn needs role customer|agent and text"
                )
        except (ValueError, KeyError, TypeError) as exc:
            typer.echo(f"{input}:{n}: {exc}", err=True)
            raise typer.Exit(1) from None
        records.append(rec)
    settings = Settings()
    settings.ensure_dirs()
    grader = bootstrap.open_grader(settings)
    with output.open("w", encoding="utf-8") as out:
        for rec in tqdm(records, desc="Grading", unit="transcript", disable=None):
            graded = grader.grade_transcript(rec["id"], rec["turns"])
            out.write(json.dumps(graded.public(), ensure_ascii=False) + "\n")
    typer.echo(f"graded {len(records)} transcript(s) -> {output}")


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A chat transcript: text, CSV or rapport JSONL")],
    speaker: Annotated[
        list[str] | None,
        typer.Option("--speaker", help="NAME=agent or NAME=customer, when speakers are names"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, text, csv or jsonl")] = "auto",
    user: Annotated[
        str | None, typer.Option("--user", help="The account whose History it goes in")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    draft: Annotated[
        Path | None,
        typer.Option("--draft-persona", help="Also write a draft persona YAML (first chat)"),
    ] = None,
) -> None:
    """Import a real conversation: mask personal data, grade it and save it in History
    (marked real), then print its feedback. Nothing is saved if the file can't be read."""
    import json

    import bootstrap
    from common.settings import Settings
    from sim.persona import library_dir
    from storage import open_store
    from training.persona_draft import DraftError, draft_with_settings
    from training.real_import import feedback_text, import_with_roles, public_result, speaker_roles
    from training.transcripts import SpeakersUnclear, TranscriptError, read_file
    from training.users import UserStore

    settings = Settings()
    if draft is not None and draft.resolve().parent == library_dir(settings).resolve():
        typer.echo(
            "error: write the draft outside the persona library (that would publish "
            "it unchecked), then import it in the Persona Studio",
            err=True,
        )
        raise typer.Exit(2)
    try:
        roles = speaker_roles(speaker or [])
        data = read_file(file)
    except (ValueError, TranscriptError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    settings.ensure_dirs()
    store = open_store(settings)
    try:
        if user is not None and UserStore(store).get(user) is None:
            typer.echo(f"error: no account {user!r}; see `rapport users list`", err=True)
            raise typer.Exit(2)
        grader = bootstrap.open_grader(settings)
        try:
            found = import_with_roles(store, grader, user, data, file.name, fmt, roles)
        except TranscriptError as exc:
            hint = (
                " Name them with --speaker NAME=agent." if isinstance(exc, SpeakersUnclear) else ""
            )
            typer.echo(f"error: not imported: {exc}{hint}", err=True)
            raise typer.Exit(1) from None
    finally:
        store.close()
    result: dict[str, object] = {"conversations": public_result(found)}
    if draft is not None:
        first = found[0]
        try:
            made = draft_with_settings(
                settings, first.turns, first.feedback.model_dump(mode="json"), seed=first.session_id
            )
            draft.write_text(made.yaml_text, encoding="utf-8")
        except (DraftError, OSError) as exc:
            typer.echo(f"error: imported, but no draft persona was written: {exc}", err=True)
            raise typer.Exit(1) from None
        result["draft"] = {
            "path": str(draft),
            "suggested_id": made.suggested_id,
            "source": made.source,
            "notes": made.notes,
        }
    if json_out:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    for c in found:
        typer.echo(feedback_text(c) + "\n")
    if draft is not None:
        typer.echo(f"Draft persona written to {draft} ({made.source}). " + " ".join(made.notes))
        typer.echo("Finish it, then import it in the Persona Studio to check and publish it.")


@app.command("eval")
def eval_cmd(
    suite: Annotated[
        list[str] | None,
        typer.Option(
            "--suite",
            help="locked, transfer, gold, consistency, invariance, injection, known-groups "
            "(default: all of them), or guard (customer model vs injection and off-topic "
            "probes) or fidelity (does the customer sound like a person; see eval/README.md), "
            "run on request",
        ),
    ] = None,
    input: Annotated[
        Path | None,
        typer.Option("--input", help="Your labelled JSONL: rapport grade input plus 'labels'"),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Report folder")] = Path("eval/reports/latest"),
    judge: Annotated[
        str,
        typer.Option("--judge", help="classifier, or openai to evaluate the LLM-judge path too"),
    ] = "classifier",
    limit: Annotated[
        int | None, typer.Option(help="Use only the first N items per suite (a quick slice)")
    ] = None,
    k: Annotated[int, typer.Option(help="Repeats for the consistency suite")] = 5,
    persona: Annotated[
        list[str] | None,
        typer.Option("--persona", help="Personas for known-groups, guard, fidelity (default: all)"),
    ] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples")] = 1000,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            "--compare",
            help="Also run these graders on the same suites, side by side: exemplar (the "
            "earlier exemplar classifier)",
        ),
    ] = None,
) -> None:
    """Score the rubric's validity and consistency offline and write a report."""
    import tempfile

    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from bootstrap import judge_for, open_practice, rulings_suite_input, signals_from_grader
    from common.settings import Settings
    from eval import runner, suites
    from rubric.classifier import ExemplarIndex, load_calibration_for
    from rubric.grader import Grader
    from rubric.techniques import load_rubric

    settings = Settings()
    names = list(suite or ([] if input else list(runner.ALL_SUITES)))
    if input:
        names.append("input")
    rubric = load_rubric()
    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
    grader = Grader(
        rubric,
        ExemplarIndex(rubric, client),
        load_calibration_for(rubric),
        turn_model=None if settings.grader_model == "exemplar" else "default",
    )
    graders = [("turn_model" if grader.turn_model is not None else "classifier", grader)]
    for other in compare or []:
        if other != "exemplar":
            typer.echo("error: --compare takes: exemplar", err=True)
            raise typer.Exit(2)
        graders.append(
            ("exemplar", Grader(rubric, grader.index, grader.calibration, turn_model=None))
        )
    if judge == "openai":
        js = Settings(provider="openai") if settings.provider != "openai" else settings
        jg = judge_for(js)
        if jg is None:
            typer.echo("error: --judge openai needs RAPPORT_PROVIDER=openai settings", err=True)
            raise typer.Exit(2)
        graders.append(
            (
                "llm_judge",
                Grader(
                    rubric, grader.index, grader.calibration, judge=jg, turn_model=grader.turn_model
                ),
            )
        )
    elif judge != "classifier":
        typer.echo("error: --judge must be classifier or openai", err=True)
        raise typer.Exit(2)
    tmp = Path(tempfile.mkdtemp(prefix="rapport-eval-"))
    # Known-groups sessions run the director and the actor for real; short (40-token), seeded replies
    # keep them fast and repeatable. The director grades each turn with this same grader.
    practice = open_practice(
        settings.model_copy(
            update={
                "data_dir": tmp,
                "max_tokens": min(settings.max_tokens, 40),
                "seed": settings.seed if settings.seed is not None else 7,
            }
        ),
        signals_factory=lambda s: signals_from_grader(grader),
    )

    def play(persona_id: str, lines: list[str]) -> suites.Played:
        return suites.play_session(practice, persona_id, lines)

    opts = suites.Options(limit=limit, k=k, bootstrap=bootstrap)
    if "rulings" in names:  # from the database, less those any grader here was fitted on
        from storage import StoreError

        try:
            opts.extra["rulings"] = rulings_suite_input(settings, [g for _, g in graders])
        except StoreError as exc:
            typer.echo(f"error: the rulings suite can't read the database: {exc}", err=True)
            raise typer.Exit(1) from None
    persona_ids = list(persona or practice.personas)
    if "fidelity" in names:
        from eval.fidelity_report import run_cli

        names.remove("fidelity")
        from providers.registry import local_model_path

        # the app's own reply settings (reply lengths are measured), seeded for repeatability;
        # the model already assembled in the real data dir, not a new copy in the temporary one
        fix = {"data_dir": tmp / "fidelity", "seed": practice.settings.seed}
        if settings.provider == "local":
            fix["model_path"] = local_model_path(settings)
        fid = open_practice(
            settings.model_copy(update=fix), signals_factory=lambda s: signals_from_grader(grader)
        )
        try:
            typer.echo(run_cli(fid, persona_ids, limit, out))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if not names:
            return
    if "guard" in names:
        import json

        from eval.guard_suite import guard_markdown, suite_guard

        names.remove("guard")
        res = suite_guard(practice, persona_ids, limit=limit)
        out.mkdir(parents=True, exist_ok=True)
        (out / "guard.json").write_text(json.dumps(res, indent=2, ensure_ascii=False))
        (out / "guard.md").write_text(guard_markdown(res))
        o = res["overall"]
        typer.echo(
            f"guard: {o['n']} replies, in character {o['in_character']:.1%} (first attempt "
            f"{o['raw_in_character']:.1%}, fallback {o['fallback']:.1%}); report {out / 'guard.md'}"
        )
        if not names:
            return
    cards = {}
    for n, (label, g) in enumerate(graders):
        folder = out if n == 0 else out / label
        # the comparison graders run the labelled suites only (known-groups plays sessions)
        run_names = names if n == 0 else [x for x in names if x != "known-groups"]
        res = runner.run(g, folder, run_names, opts, play, persona_ids, input, label)
        cards[label] = res["reliability"]
        typer.echo(f"{label}: report written to {folder / 'report.md'}")
        for t, c in res["reliability"].items():
            typer.echo(
                f"  {t:10} F1 {runner._fmt(c['f1'])}  kappa {runner._fmt(c['kappa'])}  retest alpha {runner._fmt(c['retest_alpha'])}  flip {runner._fmt(c['flip_rate'], 3)}"
            )
    if len(cards) > 1:
        (out / "comparison.md").write_text(runner.comparison_markdown(cards))
        typer.echo(f"side-by-side comparison: {out / 'comparison.md'}")


@app.command()
def simulate(
    persona: Annotated[str, typer.Option(help="Persona id (see `rapport personas list`).")],
    agent_script: Annotated[
        Path, typer.Option(help="Text file: one agent message per line (# starts a comment).")
    ],
    seed: Annotated[int | None, typer.Option(help="Sampling seed for the customer model.")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the stable JSON format (rapport.simulate/1).")
    ] = False,
) -> None:
    """Play an agent script against a persona: replies, mood, facts, verdicts, guard, outcome."""
    import json
    import tempfile

    import bootstrap
    from common.settings import Settings
    from providers.registry import ProviderError
    from sim.persona import PersonaError, library_dir, load_personas
    from sim.practice import Practice
    from sim.simulate import read_script, render_text
    from sim.simulate import simulate as run_simulation
    from storage import SessionStore

    try:
        lines = read_script(agent_script.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read {agent_script}: {exc}", err=True)
        raise typer.Exit(2) from None
    if not lines:
        typer.echo(f"error: {agent_script} has no agent lines", err=True)
        raise typer.Exit(2)
    settings = Settings() if seed is None else Settings(seed=seed)
    try:
        personas = load_personas(library_dir(settings))
    except PersonaError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if persona not in personas:
        typer.echo(f"error: no persona '{persona}'; see `rapport personas list`", err=True)
        raise typer.Exit(2)
    settings.ensure_dirs()
    # Simulated sessions go to a throwaway store, not the trainee's history.
    with tempfile.TemporaryDirectory(prefix="rapport-simulate-") as tmp:
        practice = Practice(
            settings, SessionStore(Path(tmp) / "sessions.db"), personas, **bootstrap.grading()
        )
        try:
            result = run_simulation(practice, persona, lines, seed)
        except ProviderError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            practice.store.close()
    typer.echo(
        json.dumps(result, ensure_ascii=False, indent=None) if json_out else render_text(result)
    )


@rubric_app.command("fit")
def rubric_fit(
    seed: Annotated[
        int, typer.Option(help="Seed: the same data and seed give the same model")
    ] = 13,
    epochs: Annotated[int, typer.Option(help="Passes over the training turns")] = 3,
    exemplar_only: Annotated[
        bool, typer.Option(help="Refit only the exemplar classifier (no torch needed)")
    ] = False,
    include_rulings: Annotated[
        bool,
        typer.Option(
            "--include-rulings",
            help="Also fit the turn model on trainers' rulings from the database (one in "
            "three is held out for the rulings eval suite)",
        ),
    ] = False,
) -> None:
    """Refit the grader after editing the rubric or the labelled turns.

    Fine-tunes the turn model on eval/data/turns/train.jsonl plus the rubric's exemplars
    (thresholds on dev; the locked test is never read), exports it to ONNX in rubric/model/,
    and refits the exemplar classifier's weights. Needs torch: `make install-train`.
    """
    from rubric.fit import main as fit_main

    rulings: list[dict[str, object]] = []
    if include_rulings:
        from common.settings import Settings
        from storage import StoreError
        from training.disputes import fit_records

        try:
            rulings = fit_records(Settings())
        except StoreError as exc:
            typer.echo(f"error: can't read the rulings: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"read {len(rulings)} ruling(s) from the database")
    cal = fit_main()
    for t, c in cal.techniques.items():
        typer.echo(f"exemplar classifier {t:10} threshold {c.threshold:.2f}")
    if exemplar_only:
        return
    from rubric.train import TrainConfig, main_cli
    from rubric.turn_model import MODEL_DIR

    try:
        card = main_cli(
            TrainConfig(seed=seed, epochs=epochs), MODEL_DIR, log=typer.echo, rulings=rulings
        )
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for t, lc in card.calibration.items():
        typer.echo(f"turn model {t:10} threshold {lc.threshold:.2f} band {lc.abstain_band:.2f}")
    typer.echo(f"wrote {MODEL_DIR}/turn_model.onnx and turn_model.json")


@rubric_app.command("status")
def rubric_status() -> None:
    """Say whether the fitted grader matches the current rubric (exit 1 when it is older)."""
    from rubric.classifier import rubric_hash
    from rubric.grader import stale_message
    from rubric.techniques import load_rubric
    from rubric.turn_model import MODEL_DIR, ModelCard

    rubric = load_rubric()
    card_path = MODEL_DIR / "turn_model.json"
    if not card_path.exists():
        typer.echo("no fitted turn model: run rapport rubric fit")
        raise typer.Exit(1)
    card = ModelCard.load(card_path)
    missing = [t for t in rubric.technique_ids + rubric.marker_ids if t not in card.labels]
    if card.rubric_hash != rubric_hash(rubric) or missing:
        typer.echo(stale_message())
        if missing:
            typer.echo(f"not scored until then: {', '.join(missing)}")
        raise typer.Exit(1)
    typer.echo(f"turn model up to date ({card.fitted_on}; created {card.created})")


@rubric_app.command("validate")
def rubric_validate() -> None:
    """Validate rubric/techniques.yaml."""
    from rubric.techniques import RubricError, load_rubric

    try:
        r = load_rubric()
    except RubricError as exc:
        typer.echo(str(exc))
        raise typer.Exit(1) from None
    typer.echo(f"rubric v{r.version}: {', '.join(t.id for t in r.techniques)}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 7860)")] = None,
    allow_public: Annotated[
        bool,
        typer.Option(
            "--allow-public",
            help="Confirm serving a non-loopback host with sign-in off (RAPPORT_ALLOW_PUBLIC).",
        ),
    ] = False,
) -> None:
    """Start the web app. With RAPPORT_AUTH=on, trainees and trainers sign in."""
    import app as webapp
    from common.settings import Settings

    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if allow_public:
        overrides["allow_public"] = True
    webapp.main(Settings(**overrides))  # type: ignore[arg-type]


@app.command("backup")
def backup_cmd(
    dest: Annotated[Path, typer.Argument(help="Backup file to write, or a folder to put it in")],
) -> None:
    """Back up the session database. Safe while the app is running."""
    from common.settings import Settings
    from storage.backup import BackupError, backup, check_database

    db = Settings().database_url or Settings().db_path
    try:
        out = backup(db, dest)
        n = check_database(out)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"backed up {n} session(s): {db} -> {out}")


@app.command("restore")
def restore_cmd(
    src: Annotated[Path, typer.Argument(help="A backup written by 'rapport backup'")],
) -> None:
    """Replace the session database with a backup (stop the app first). The backup is
    checked before anything changes; the current database is kept beside it."""
    from common.settings import Settings
    from storage.backup import BackupError, check_database, restore

    db = Settings().database_url or Settings().db_path
    try:
        kept = restore(src, db)
        n = check_database(db)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"restored {n} session(s) from {src} into {db}")
    if kept is not None:
        typer.echo(f"the previous database is kept at {kept}")


@rulings_app.command("export")
def rulings_export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="JSONL file to write (rapport eval --input)")
    ],
) -> None:
    """Write every ruling as labelled data in the `rapport eval --input` format. Rulings on
    private turns the trainee did not share are left out."""
    from common.settings import Settings
    from storage import StoreError
    from training.disputes import export_rulings

    try:
        data = export_rulings(Settings(), output)
    except (StoreError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    note = (
        f"; left out {data.skipped_private} on private turns the trainee did not share"
        if data.skipped_private
        else ""
    )
    typer.echo(f"wrote {len(data.records)} ruling(s) to {output}{note}")


users_app = typer.Typer(no_args_is_help=True, help="Sign-in accounts (for RAPPORT_AUTH=on).")
app.add_typer(users_app, name="users")


def _user_store() -> object:
    from common.settings import Settings
    from storage import open_store
    from training.users import UserStore

    settings = Settings()
    settings.ensure_dirs()
    return UserStore(open_store(settings))


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        return password[:-1] if password.endswith("\r") else password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name: letters, digits, '.', '_', '-'")],
    role: Annotated[str, typer.Option("--role", help="trainee or trainer")] = "trainee",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Add an account. Prompts for the password twice unless --password-stdin."""
    from training.users import ROLES, UserError, UserStore, check_password, normalise_name

    if role not in ROLES:
        typer.echo(f"error: --role must be trainee or trainer, not {role!r}", err=True)
        raise typer.Exit(2)
    try:
        name = normalise_name(name)
        password = _read_password(password_stdin)
        check_password(password)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    users = _user_store()
    assert isinstance(users, UserStore)
    try:
        user = users.add_user(name, role, password)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        users.store.close()
    typer.echo(f"added {user.role} {user.name}")


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="An existing account")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Set a new password for an account."""
    from training.users import UserError, UserStore

    users = _user_store()
    assert isinstance(users, UserStore)
    try:
        if users.get(name) is None:
            raise UserError(f"No user named {name!r}.")
        users.set_password(name, _read_password(password_stdin))
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        users.store.close()
    typer.echo(f"password changed for {name.strip().lower()}")


@users_app.command("list")
def users_list() -> None:
    """List accounts: name, role, created."""
    from training.users import UserStore

    users = _user_store()
    assert isinstance(users, UserStore)
    try:
        rows = users.list_users()
    finally:
        users.store.close()
    for u in rows:
        typer.echo(f"{u.name:32} {u.role:8} {u.created_at}")
    if not rows:
        typer.echo("no users yet: add one with 'rapport users add NAME --role trainer'")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
