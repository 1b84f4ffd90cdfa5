"""Decoding: sampling processors, KV-cached generate/stream, and text streaming."""

from legollm.generation.decode import generate, stream
from legollm.generation.sampling import next_token
from legollm.generation.text import TextStreamer, stream_text

__all__ = ["TextStreamer", "generate", "next_token", "stream", "stream_text"]
