"""Training management around the simulation: accounts and permissions (``users``), the
persona library (``persona_repo``), history, progress, exports and hints (``history``),
disputes and rulings (``disputes``), and real conversations imported, masked, graded and
drafted into personas (``transcripts``, ``masking``, ``real_import``, ``persona_draft``)."""
