"""The web app's parts: one module per tab or panel (its layout and a handler class) and the
display helpers they share. ``app.py`` composes them; nothing in ``sim``, ``rubric`` or
``eval`` imports from here."""
