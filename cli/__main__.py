"""``python -m cli``: the same as the ``rapport`` command."""

from cli import main

main()
