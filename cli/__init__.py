"""The ``rapport`` command line: one module per command group (``personas``, ``model``,
``rubric``, ``rulings``, ``users``) or per pair of related commands (``practice``: chat and
simulate; ``grading``: grade and import; ``data``: ingest, backup and restore), ``evaluation``
for eval and ``serve`` for the web app, all put together in ``root``.
"""

from cli.root import app, main

__all__ = ["app", "main"]
