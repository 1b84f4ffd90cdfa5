"""Architectures: presets and weight maps over the one DecoderLM (importing registers them)."""

from legollm.architectures import gpt2  # noqa: F401
