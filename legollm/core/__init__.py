"""Core utilities shared by every layer: errors, file helpers, tokenization."""
