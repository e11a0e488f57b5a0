"""The ``rapport`` command: every command and group, in the order ``rapport --help`` lists
them. Each lives in its own module; subcommands import what they need lazily, to start fast."""

from __future__ import annotations

import typer

from cli.data import backup_cmd, ingest, restore_cmd
from cli.evaluation import eval_cmd
from cli.grading import grade, import_cmd
from cli.model import model_app
from cli.personas import personas_app
from cli.practice import chat, simulate
from cli.rubric import rubric_app
from cli.rulings import rulings_app
from cli.serve import serve
from cli.users import users_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Rapport: empathy practice.")
app.command()(chat)
app.command()(ingest)
app.command()(grade)
app.command("import")(import_cmd)
app.command("eval")(eval_cmd)
app.command()(simulate)
app.command()(serve)
app.command("backup")(backup_cmd)
app.command("restore")(restore_cmd)
app.add_typer(personas_app, name="personas")
app.add_typer(model_app, name="model")
app.add_typer(rubric_app, name="rubric")
app.add_typer(rulings_app, name="rulings")
app.add_typer(users_app, name="users")


def main() -> None:
    app()
