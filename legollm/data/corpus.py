"""The embedded default corpus: text every Python installation already carries.

The README's demo must run offline on a fresh machine, and the project must not
ship third-party text. Python's own reference documentation is on every machine
that runs LegoLLM: ``pydoc_data.topics`` holds the language reference sections
that ``help("assert")`` prints (about 460 KB of English prose and code). Each
topic is one document. Where a distribution strips that module, the docstrings
of the standard library modules stand in.
"""

from __future__ import annotations

import importlib
import sys


def default_documents() -> list[str]:
    """Return the default corpus as a list of documents, in a fixed order."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # pragma: no cover - distributions that strip pydoc_data
        return _stdlib_docstrings()
    return [topics[name].strip() for name in sorted(topics) if topics[name].strip()]


def default_corpus(separator: str = "\n\n") -> str:
    """Return the default corpus as one string, documents joined by ``separator``."""
    return separator.join(default_documents())


def _stdlib_docstrings() -> list[str]:  # pragma: no cover - fallback only
    docs = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in {"antigravity", "this"}:
            continue
        try:
            module = importlib.import_module(name)
        except Exception:
            continue
        if module.__doc__ and len(module.__doc__) > 200:
            docs.append(module.__doc__.strip())
    return docs


__all__ = ["default_corpus", "default_documents"]
