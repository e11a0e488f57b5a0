"""The shared core: what every other package may import and which imports none of them.

Modules: ``settings``, ``text`` (shared text patterns and the stemmer), ``techniques`` (the
rubric's technique ids, read from its data file), ``turns`` (the one conversational
:class:`~common.turns.Turn` and its typed metadata) and ``metrics``.
"""
