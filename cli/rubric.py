"""``rapport rubric``: refit, check and validate the grading rubric."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.shared import load_settings

rubric_app = typer.Typer(no_args_is_help=True, help="The grading rubric.")


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
        from storage import StoreError
        from training.disputes import fit_records

        try:
            rulings = fit_records(load_settings())
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
