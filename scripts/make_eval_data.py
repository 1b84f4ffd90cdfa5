"""Regenerate the evaluation data shipped in legollm/evaluation/data from ../shared/data.

Both files come from text/python_docs.txt (the Python 3.11 documentation sources),
from chapters the demo's corpus (pydoc_data's language-reference topics) does not hold:

- held_out.txt: the start of the Argparse tutorial (a HOWTO), cut at a line
  boundary after 24,000 characters: the text ``legollm eval MODEL`` reads by default.
- choices.jsonl: 200 sentence-completion questions from the chapters after the language
  reference (the tutorial, "Using Python", "What's New"). A
  sentence of 10 to 30 words is cut after 60% of its words; the context is its
  first part, the gold choice its real ending, and the three others are endings of
  other sentences of those chapters. One JSON object per line: context, choices, gold.

The same input gives the same files (a fixed random seed):

    python scripts/make_eval_data.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "legollm" / "evaluation" / "data"
HELD_OUT_START = "Argparse Tutorial\n"
HELD_OUT_CHARS = 24_000
TUTORIAL_START = "Whetting Your Appetite\n"
QUESTIONS, DISTRACTORS, SEED = 200, 3, 16
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
PLAIN = re.compile(r"^[A-Za-z0-9 ,;'()\-]+[.!?]$")  # no markup, code or roles


def held_out(docs: str) -> str:
    start = docs.index(HELD_OUT_START)
    end = docs.index("\n", start + HELD_OUT_CHARS)
    return docs[start : end + 1]


def tutorial_sentences(docs: str) -> list[str]:
    """Prose sentences from the tutorial on: paragraphs of unindented lines, no markup."""
    tutorial = docs[docs.index(TUTORIAL_START) :]
    sentences = []
    for paragraph in tutorial.split("\n\n"):
        lines = paragraph.strip("\n").splitlines()
        if not lines or any(not line or line[0].isspace() or line.startswith("..")
                            for line in lines):  # fmt: skip
            continue
        for sentence in SENTENCE_END.split(" ".join(lines)):
            if PLAIN.match(sentence) and 10 <= len(sentence.split()) <= 30:
                sentences.append(sentence)
    return sorted(set(sentences))  # a stable order, whatever the paragraphs' repeats


def questions(sentences: list[str], rng: random.Random) -> list[dict]:
    picked = rng.sample(sentences, QUESTIONS)
    cuts = []
    for sentence in picked:
        words = sentence.split()
        k = round(len(words) * 0.6)
        cuts.append((" ".join(words[:k]), " ".join(words[k:])))
    out = []
    for i, (context, ending) in enumerate(cuts):
        others = [e for j, (_, e) in enumerate(cuts) if j != i and e != ending]
        choices = rng.sample(others, DISTRACTORS)
        gold = rng.randrange(DISTRACTORS + 1)
        choices.insert(gold, ending)
        out.append({"context": context, "choices": choices, "gold": gold})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", default=Path(__file__).resolve().parents[2] / "shared" / "data",
                   type=Path, help="the shared data folder (default: ../shared/data)")  # fmt: skip
    args = p.parse_args()
    docs = (args.shared / "text" / "python_docs.txt").read_text(encoding="utf-8")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "held_out.txt").write_text(held_out(docs), encoding="utf-8")
    records = questions(tutorial_sentences(docs), random.Random(SEED))
    with (OUT / "choices.jsonl").open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    print(f"wrote {OUT / 'held_out.txt'} and {len(records)} questions to {OUT / 'choices.jsonl'}")


if __name__ == "__main__":
    main()
