"""The SFT loss from first principles: only response tokens count, and gradient
accumulation over micro-batches of different sizes equals the full-batch token mean."""

import pytest
import torch
import torch.nn.functional as F

from legollm.finetuning.dataset import InstructionLoader, collate, tokenize_records
from legollm.finetuning.formats import AlpacaFormat
from legollm.models import DecoderLM, ModelConfig
from legollm.models.loss import lm_loss
from legollm.training import TrainConfig, Trainer


def tiny_model(vocab, seed=0):
    torch.manual_seed(seed)
    return DecoderLM(
        ModelConfig(vocab_size=vocab, context_length=256, n_layer=1, n_head=2, n_embd=16)
    )


def test_loss_counts_only_response_tokens(char_tokenizer):
    tok = char_tokenizer
    fmt = AlpacaFormat()
    recs = [
        {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
        {"instruction": "Reverse it.", "input": "abc", "output": "cba, reversed"},
    ]
    examples, _ = tokenize_records(recs, fmt, tok, 256)
    x, y = collate(examples, pad_id=0)
    model = tiny_model(tok.vocab_size)
    logits = model(x)
    loss = lm_loss(logits, y)
    # oracle: the prompt length from the prompt *text* alone; the targets are the
    # response characters and the EOT id, predicted from the position just before each
    terms = []
    for b, rec in enumerate(recs):
        full = tok.encode_ordinary(fmt.prompt_text(rec) + rec["output"]) + [tok.eot_token_id]
        n_prompt = len(tok.encode_ordinary(fmt.prompt_text(rec)))
        logp = F.log_softmax(logits[b].double(), dim=-1)
        terms += [-logp[t - 1, full[t]] for t in range(n_prompt, len(full))]
    expected = torch.stack(terms).mean()
    assert len(terms) == 1 + 1 + len("cba, reversed") + 1
    assert torch.allclose(loss.double(), expected, atol=1e-5)
    # counting the prompt as well would give a clearly different number
    x_all, y_all = collate(tokenize_records(recs, fmt, tok, 256, "all")[0], 0)
    loss_all = lm_loss(model(x_all), y_all)
    assert abs(loss_all.item() - expected.item()) > 1e-2


def _captured_grads(trainer):
    got = {}

    def capture(*a, **k):
        got.update({n: p.grad.clone() for n, p in trainer.raw_model.named_parameters()})

    trainer.optimizer.step = capture
    trainer.train_step()
    return got


@pytest.mark.parametrize("norm", ["tokens", "micro_steps"])
def test_accumulated_gradient_is_the_full_batch_token_mean(char_tokenizer, tmp_path, norm):
    """Two micro-batches, 1 and 60 response tokens: accumulating must weight every token
    equally (the full batch's token mean), not every micro-batch equally."""
    tok = char_tokenizer
    recs = [
        {"instruction": "Say yes.", "input": "", "output": ""},  # only the EOT is trained
        {"instruction": "Count.", "input": "", "output": "one two three four five six seven"},
    ]
    examples, _ = tokenize_records(recs, AlpacaFormat(), tok, 256)
    counts = [sum(t != -100 for t in y) for _, y in examples]
    assert counts[0] == 1 and counts[1] > 30
    cfg = TrainConfig(batch_size=1, grad_accum_steps=2, grad_clip=0.0, device="cpu",
                      precision="fp32", block_size=256, warmup_iters=0, loss_normalization=norm,
                      progress=False)  # fmt: skip
    loader = InstructionLoader(examples, batch_size=1, pad_id=0, shuffle=False)
    trainer = Trainer(tiny_model(tok.vocab_size), cfg, loader, run_dir=tmp_path)
    got = _captured_grads(trainer)

    ref = tiny_model(tok.vocab_size)  # same seed, same weights
    x, y = collate(examples, pad_id=0)
    logits = ref(x)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)  # token mean
    loss.backward()
    close = all(
        torch.allclose(got[n], p.grad, atol=1e-6, rtol=1e-4) for n, p in ref.named_parameters()
    )
    # "tokens" is the project's rule and must match; the per-micro-step mean must not
    assert close is (norm == "tokens")
