"""``rapport eval``: score the rubric's validity and consistency offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.shared import load_settings


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
    from eval import runner, suites
    from rubric.classifier import ExemplarIndex, load_calibration_for
    from rubric.grader import Grader
    from rubric.techniques import load_rubric

    settings = load_settings()
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
        js = load_settings(provider="openai") if settings.provider != "openai" else settings
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
