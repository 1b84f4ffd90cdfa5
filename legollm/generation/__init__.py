"""Generation: sampling, KV-cached decoding and streaming text.

- sampling.py: logits processors (temperature, top-k, top-p, min-p, repetition penalty).
- text.py: TextStreamer, UTF-8-safe text from token ids with stop strings.
- decode.py: generate and stream (KV-cached, batched), stream_text (text in, text out).
"""

from legollm.generation.decode import generate, stream, stream_text
from legollm.generation.sampling import next_token
from legollm.generation.text import TextStreamer

__all__ = ["TextStreamer", "generate", "next_token", "stream", "stream_text"]
