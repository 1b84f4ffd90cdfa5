"""LegoLLM models in lm-evaluation-harness: ``lm_eval --model legollm --model_args path=MODEL``.

lm-evaluation-harness (``lm-eval`` on PyPI) runs hundreds of standard tasks
(HellaSwag, ARC, MMLU, ...) against any class that answers three kinds of request.
:class:`LegoLLMHarness` answers them with LegoLLM's own model, tokenizer and code:

- ``loglikelihood``: :func:`~legollm.evaluation.loglikelihood.loglikelihood`, which
  tokenises pairs exactly as the harness's ``hf`` model does;
- ``loglikelihood_rolling`` (perplexity tasks): the harness's rolling windows over
  a document (the first predicted from an end-of-text token, each later one a full
  context, scoring only the tokens not yet scored), each window a continuation for
  :func:`~legollm.evaluation.loglikelihood.loglikelihood_tokens`. These are not
  :func:`~legollm.evaluation.perplexity.perplexity`'s windows: the harness's last
  window is full length, so its scores differ there, and parity with the ``hf``
  model is what a harness score is for;
- ``generate_until``: the KV-cached batched generator (:mod:`legollm.generation`),
  left-padded batches, stop sequences, the end-of-text token as one more stop.

``--model_args``: ``path`` (anything ``legollm generate`` accepts), and optionally
``tokenizer``, ``device``, ``dtype`` (float32, bfloat16, float16), ``batch_size``,
``max_gen_toks`` (default 256).

lm-eval finds its models in a registry filled on import; it has no plugin
discovery. Importing this module registers ``legollm``, and installing LegoLLM
installs a start-up hook (``legollm_lm_eval.pth``) that imports it whenever
lm-eval's registry is imported, so the plain ``lm_eval`` command knows the name.
``python -m legollm.evaluation.harness ...`` runs lm-eval's command line with the
model registered, for environments where ``.pth`` files are not read.
"""

from __future__ import annotations

from typing import Any

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import (
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

from legollm.components.linear import store_by_columns
from legollm.core.runtime import resolve_device
from legollm.core.tokenization.specs import max_token_id
from legollm.evaluation.loglikelihood import loglikelihood, loglikelihood_tokens
from legollm.evaluation.perplexity import window_length
from legollm.generation import generate
from legollm.models.loading import load_model

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@register_model("legollm")
class LegoLLMHarness(LM):
    """A LegoLLM checkpoint, run directory or HF directory as an lm-eval model."""

    def __init__(
        self,
        path: str,
        tokenizer: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | str = 16,
        max_gen_toks: int = 256,
        **_harness_options: Any,  # the harness passes e.g. max_batch_size to every model
    ) -> None:
        super().__init__()
        device = resolve_device(device or "auto")
        loaded = load_model(path, tokenizer, device=device, dtype=DTYPES.get(dtype or ""))
        # few-row products (short choices, decoding) are faster from column-stored weights
        self.model, self.tokenizer = store_by_columns(loaded.model.eval()), loaded.tokenizer
        self._device = device
        self.batch_size = 16 if str(batch_size).startswith("auto") else int(batch_size)
        self.max_gen_toks = int(max_gen_toks)
        self.max_length = window_length(self.model)
        self.eot = getattr(self.tokenizer, "eot_token_id", None)

    # -- scoring ------------------------------------------------------------------
    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [req.args for req in requests]
        return loglikelihood(self.model, self.tokenizer, pairs, batch_size=self.batch_size,
                             progress=not disable_tqdm)  # fmt: skip

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        windows, owner = [], []
        for k, req in enumerate(requests):
            (text,) = req.args
            ids = self.tokenizer.encode(text)
            for window in get_rolling_token_windows(ids, self.eot, self.max_length, 1):
                windows.append(make_disjoint_window(window))
                owner.append(k)
        scores = loglikelihood_tokens(self.model, windows, batch_size=self.batch_size,
                                      progress=not disable_tqdm)  # fmt: skip
        totals = [0.0] * len(requests)
        for k, (logprob, _) in zip(owner, scores, strict=True):
            totals[k] += logprob
        return totals

    # -- generation -----------------------------------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy or sampled continuations, batched by identical generation settings,
        longest prompt first; each cut at its first stop sequence."""
        order = sorted(range(len(requests)), key=lambda i: -len(requests[i].args[0]))
        out: list[str] = [""] * len(requests)
        bar = tqdm(total=len(requests), desc="generate_until", disable=disable_tqdm)
        groups: dict[str, list[int]] = {}
        for i in order:
            groups.setdefault(repr(sorted(requests[i].args[1].items())), []).append(i)
        for members in groups.values():
            settings = requests[members[0]].args[1]
            for start in range(0, len(members), self.batch_size):
                batch = members[start : start + self.batch_size]
                texts = self._generate([requests[i].args[0] for i in batch], settings)
                for i, text in zip(batch, texts, strict=True):
                    out[i] = text
                bar.update(len(batch))
        bar.close()
        return out

    def _generate(self, contexts: list[str], settings: dict[str, Any]) -> list[str]:
        eos = self.tokenizer.decode([self.eot]) if self.eot is not None else None
        kwargs = normalize_gen_kwargs(settings, self.max_gen_toks)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_new = kwargs.pop("max_gen_toks")
        if max_new >= self.max_length:
            raise ValueError(f"max_gen_toks ({max_new}) must be below the model's context "
                             f"({self.max_length})")  # fmt: skip
        keep = self.max_length - max_new  # prompt tokens that leave room for the answer
        prompts = [self.tokenizer.encode(c)[-keep:] for c in contexts]
        width = max(map(len, prompts))
        ids = torch.zeros(len(prompts), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(prompts):  # left-padded: every row ends where decoding starts
            ids[row, width - len(p) :], mask[row, width - len(p) :] = torch.tensor(p), 1
        sampled, device = kwargs.get("do_sample", False), self._device
        full = generate(self.model, ids.to(device), max_new,
                        temperature=kwargs.get("temperature", 1.0) if sampled else 0.0,
                        top_k=kwargs.get("top_k") if sampled else None,
                        top_p=kwargs.get("top_p") if sampled else None,
                        eos_token_id=self.eot, attention_mask=mask.to(device),
                        stop_strings=until, tokenizer=self.tokenizer,
                        vocab_limit=max_token_id(self.tokenizer) + 1)  # fmt: skip
        texts = []
        for row in full[:, width:].tolist():
            if self.eot is not None and self.eot in row:
                row = row[: row.index(self.eot)]
            texts.append(postprocess_generated_text(self.tokenizer.decode(row), until, None))
        return texts


def main() -> None:
    """lm-eval's own command line, with the ``legollm`` model registered."""
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
