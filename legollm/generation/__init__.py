"""Decoding: sampling processors and KV-cached generate/stream."""

from legollm.generation.decode import generate, stream
from legollm.generation.sampling import next_token

__all__ = ["generate", "next_token", "stream"]
