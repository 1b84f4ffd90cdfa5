"""`--quantize int8` on the commands, and a quantized model saved and loaded back."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from legollm.cli.main import main
from legollm.components.quantized import Int8Linear, quantize
from legollm.generation import generate
from legollm.models.loading import load_model, save_model
from legollm.training.checkpoint import save_checkpoint
from tests.integration._run_dirs import make_run_dir

TEXT = "the cat sat on the mat. the dog sat on the log. " * 20


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run dir whose model has learnt TEXT a little (a random model's perplexity is the
    vocabulary size whatever its weights, which would hide a broken quantization)."""
    d = tmp_path_factory.mktemp("run")
    model, tok = make_run_dir(d, TEXT, vocab_size=273, model_vocab=288, context_length=64)
    ids = torch.tensor(tok.encode(TEXT))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(40):
        starts = torch.randint(
            0, len(ids) - 65, (8,), generator=torch.Generator().manual_seed(step)
        )
        x = torch.stack([ids[s : s + 64] for s in starts])
        y = torch.stack([ids[s + 1 : s + 65] for s in starts])
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    ckpt = torch.load(d / "best.pt", weights_only=True)
    ckpt["model"] = model.state_dict()
    save_checkpoint(d / "best.pt", ckpt)
    return d, model.eval(), tok


def test_generate_quantize_int8_prints_the_quantized_models_greedy_text(run_dir, capsys):
    d, model, tok = run_dir
    quantized = quantize(copy.deepcopy(model))
    ids = torch.tensor([tok.encode("the cat")])
    out = generate(quantized, ids, 24, eos_token_id=tok.eot_token_id, vocab_limit=274)
    want = "the cat" + tok.decode(out[0, ids.shape[1] :].tolist()) + "\n"
    args = ["--prompt", "the cat", "--strategy", "greedy", "--max-new-tokens", "24"]
    assert main(["generate", str(d), *args, "--quantize", "int8"]) == 0
    assert capsys.readouterr().out == want


def test_eval_quantize_int8_perplexity_within_one_percent(run_dir, tmp_path, capsys):
    d, _, _ = run_dir
    (tmp_path / "t.txt").write_text(TEXT[:600], encoding="utf-8")
    figures = []
    for extra in ([], ["--quantize", "int8"]):
        assert main(["eval", str(d), "--text", str(tmp_path / "t.txt"), "--device", "cpu",
                     "--json", *extra]) == 0  # fmt: skip
        figures.append(json.loads(capsys.readouterr().out)["perplexity"])
    fp32, int8 = figures
    assert fp32 < 10  # learnt: far below the 288 of a uniform guess
    assert int8 == pytest.approx(fp32, rel=0.01)


def test_quantized_model_saves_and_loads_back_int8(run_dir, tmp_path):
    d, _, _ = run_dir
    loaded = load_model(d)
    quantize(loaded.model, "int8")
    path = save_model(loaded, tmp_path / "int8.pt")
    saved = torch.load(path, weights_only=True)
    assert saved["quantization"] == "int8"
    assert saved["model"]["blocks.0.ffn.up_proj.weight"].dtype == torch.int8
    back = load_model(path)
    assert isinstance(back.model.lm_head, Int8Linear)
    assert back.tokenizer.encode("the dog") == loaded.tokenizer.encode("the dog")
    before, after = loaded.model.state_dict(), back.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    ids = torch.tensor([loaded.tokenizer.encode("the cat sat")])
    with torch.no_grad():
        assert torch.equal(back.model(ids), loaded.model(ids))
