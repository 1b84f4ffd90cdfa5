"""Evaluation data shipped with LegoLLM, so ``legollm eval`` runs offline.

Both files are derived from the Python 3.11 documentation sources by
``scripts/make_eval_data.py`` (which says how, and regenerates them):

- ``HELD_OUT_TEXT``: 24 KB of the Argparse tutorial, the default ``--text``;
- ``CHOICES``: 200 sentence-completion questions (plain shape: context, choices,
  gold), four endings each, one of them the sentence's real one.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
HELD_OUT_TEXT = HERE / "held_out.txt"
CHOICES = HERE / "choices.jsonl"
