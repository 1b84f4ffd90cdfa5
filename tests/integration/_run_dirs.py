"""A run directory as training leaves it, for the commands that read checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch

from legollm.core.tokenization import RegexBPETokenizer
from legollm.models import DecoderLM, ModelConfig
from legollm.training.checkpoint import save_checkpoint


def make_run_dir(d: Path, text: str, vocab_size: int, model_vocab: int, context_length: int):
    """``best.pt`` in ``d`` naming a LegoLLM tokenizer (BPE on ``text`` plus <|endoftext|>
    at id ``vocab_size``); returns ``(model, tokenizer)``, the model in eval mode."""
    tok = RegexBPETokenizer()
    tok.train(text, vocab_size=vocab_size)
    tok.register_special_tokens({"<|endoftext|>": vocab_size})
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=model_vocab, context_length=context_length, n_layer=2,
                      n_head=2, n_embd=32)  # fmt: skip
    model = DecoderLM(cfg)
    ckpt = {"model": model.state_dict(), "model_config": cfg.to_dict(),
            "tokenizer": {"type": "legollm", "path": str(tok.save(d / "tok"))}}  # fmt: skip
    save_checkpoint(d / "best.pt", ckpt)
    return model.eval(), tok
