"""The reference log-probs (a forward pass over every pair before DPO's first step)
show a bar that counts the pairs, instead of minutes of silence."""

from __future__ import annotations

import torch

from legollm.finetuning.dataset import Example
from legollm.finetuning.dpo import PreferencePair, reference_logps
from legollm.models import DecoderLM, ModelConfig

TINY = ModelConfig(vocab_size=50, context_length=32, n_layer=1, n_head=2, n_embd=16)


def pairs(n: int) -> list[PreferencePair]:
    """n made-up preference pairs: a 3-token prompt, then 3 response tokens each."""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        ids = [torch.randint(0, 50, (6,), generator=g).tolist() for _ in range(2)]
        out.append(PreferencePair(*(Example(seq[:-1], [-100, -100] + seq[3:]) for seq in ids)))
    return out


def test_reference_logps_show_a_bar_over_the_pairs(capsys):
    torch.manual_seed(0)
    model = DecoderLM(TINY)
    quiet = reference_logps(model, pairs(5), 2, 0, "cpu")
    assert capsys.readouterr().err == ""  # off unless asked for
    shown = reference_logps(model, pairs(5), 2, 0, "cpu", progress=True, desc="train")
    err = capsys.readouterr().err
    assert "reference log-probs (train)" in err and "5/5" in err
    assert shown == quiet  # the bar changes nothing else
