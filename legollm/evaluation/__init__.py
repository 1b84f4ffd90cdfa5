"""Measuring a model: perplexity and bits per byte on text, multiple-choice scores
(``legollm eval``).

Evaluation sits beside fine-tuning: it needs a model and its tokenizer (the one
loader, :func:`legollm.models.loading.load_model`) and, for a prepared split, the
data layer's reader of ``.bin`` files.
"""

from legollm.evaluation.choices import (
    ChoiceRecord,
    ChoiceResult,
    evaluate_choices,
    read_records,
    to_record,
)
from legollm.evaluation.loglikelihood import encode_pair, loglikelihood, loglikelihood_tokens
from legollm.evaluation.perplexity import (
    PerplexityResult,
    perplexity,
    perplexity_of_ids,
    perplexity_of_split,
    read_text_ids,
    token_nll,
)

__all__ = [
    "ChoiceRecord",
    "ChoiceResult",
    "evaluate_choices",
    "read_records",
    "to_record",
    "PerplexityResult",
    "encode_pair",
    "loglikelihood",
    "loglikelihood_tokens",
    "perplexity",
    "perplexity_of_ids",
    "perplexity_of_split",
    "read_text_ids",
    "token_nll",
]
