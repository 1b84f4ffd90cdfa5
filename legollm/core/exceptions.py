"""The LegoLLM error hierarchy.

Every public entry point raises one of these, with a message that says what is
wrong and what to change. The CLI prints the message on one line instead of a
traceback, so a message must stand on its own.
"""


class LegoLLMError(Exception):
    """Base class of every error LegoLLM raises on purpose."""


class ConfigError(LegoLLMError, ValueError):
    """A configuration (model, data, training) is inconsistent or incomplete."""


class TokenizerError(LegoLLMError, ValueError):
    """Bad tokenizer input: vocab size, unknown ids, missing or corrupt files."""


class ModelLoadError(LegoLLMError):
    """Weights or checkpoints that do not fit the model they are loaded into."""


class DataError(LegoLLMError):
    """Missing, corrupt or inconsistent data files."""


class DownloadError(DataError):
    """A download failed (network, checksum, unsafe path)."""


class GenerationError(LegoLLMError, ValueError):
    """Bad generation arguments: empty prompt, invalid sampling parameters."""


class TrainingError(LegoLLMError):
    """A training run cannot start or continue (data/model mismatch, bad checkpoint)."""
