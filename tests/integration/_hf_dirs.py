"""A tiny random Hugging Face Llama directory whose only tokenizer file is tokenizer.json
(as Llama 3 and Qwen ship), made by `transformers` and `tokenizers` themselves."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|eot_id|>"]  # fmt: skip
TEXT = ["hello world, how are you today? fine thanks, and you? " * 30]


def make_tokenizer_json(d: Path) -> Tokenizer:
    """A 300-token byte-level BPE with Llama 3's chat tokens, saved as ``d/tokenizer.json``."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(TEXT, trainer)
    d.mkdir(parents=True, exist_ok=True)
    tok.save(str(d / "tokenizer.json"))
    return tok


def make_llama_dir(d: Path) -> tuple[LlamaForCausalLM, Tokenizer]:
    """``save_pretrained`` a 2-layer Llama and a 300-token byte-level BPE into ``d``;
    returns ``(model, tokenizer)``, the model in eval mode."""
    tok = make_tokenizer_json(d)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, tie_word_embeddings=False)  # fmt: skip
    hf = LlamaForCausalLM(cfg).eval()
    hf.save_pretrained(d)
    return hf, tok
