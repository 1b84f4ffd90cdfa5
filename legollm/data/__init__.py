"""Data layer: the embedded default corpus, download, prepare, summary, loaders."""
