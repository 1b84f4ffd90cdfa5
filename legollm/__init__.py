"""LegoLLM: build language models from first principles, one swappable piece at a time."""

__version__ = "0.1.0"
