"""`legollm sft` end to end on tiny random models: from an HF GPT-2 dir (LoRA), from an HF
Llama dir with only a tokenizer.json (the run works after the dir is gone) and from a
LegoLLM checkpoint (full fine-tuning, exact resume), plus the bad-input messages."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from legollm.cli.main import main
from tests.integration._finetune import ROOT, _ascii, _losses, write_config
from tests.unit.finetuning.conftest import _one_thread  # noqa: F401


@pytest.fixture(scope="module")
def records(shared_data):
    return json.loads((shared_data / "instruct" / "instruction_data.json").read_text())[:40]


def test_lora_from_hf_dir_writes_adapter_and_responses(tmp_path, records, hf_gpt2_dir, capsys):
    from legollm.peft import load_adapter
    from legollm.training.checkpoint import load_model_from_checkpoint

    (tmp_path / "data.json").write_text(json.dumps(records))
    cfg = write_config(tmp_path, init=str(hf_gpt2_dir))
    assert main(["sft", "--config", str(cfg), "--lora", "r=4,alpha=8,targets=attn"]) == 0
    out = capsys.readouterr().out
    assert "(LoRA)" in out and "adapter:" in out
    run = tmp_path / "run"
    responses = json.loads((run / "test_responses.json").read_text())
    assert len(responses) == 3
    assert all({"instruction", "input", "output", "response"} <= set(r) for r in responses)
    # the adapter on a fresh base == the checkpoint merged == the trained weights
    from legollm.models import load_pretrained

    adapted = load_adapter(load_pretrained(hf_gpt2_dir), run / "adapter").eval()
    merged, ckpt = load_model_from_checkpoint(run / "latest.pt")
    assert ckpt["lora"]["r"] == 4 and ckpt["tokenizer"]["type"] == "gpt2"
    # the run's own copies of vocab.json / merges.txt, not the HF dir's
    assert Path(ckpt["tokenizer"]["encoder_json"]) == (run / "tokenizer" / "vocab.json").resolve()
    assert Path(ckpt["tokenizer"]["vocab_bpe"]) == (run / "tokenizer" / "merges.txt").resolve()
    assert ckpt["sft"]["format"] == "alpaca"  # legollm chat picks the trained format from it
    x = torch.randint(0, 50257, (1, 12))
    with torch.no_grad():
        assert torch.allclose(adapted(x), merged(x), atol=1e-5)
        assert not torch.allclose(merged(x), load_pretrained(hf_gpt2_dir)(x), atol=1e-4)


@pytest.mark.filterwarnings("ignore:.*truncated")  # byte-level ids: some records exceed 256
def test_run_from_tokenizer_json_dir_needs_neither_the_dir_nor_a_flag(
    tmp_path, records, capsys, monkeypatch
):
    """Llama 3 and Qwen dirs describe their tokenizer only by tokenizer.json: the run keeps a
    copy, so generate and chat work on it after the base dir is deleted. The oracle is the
    `tokenizers` library that wrote the file, decoding our model's greedy ids."""
    from legollm.generation import generate
    from legollm.models.loading import find_checkpoint
    from legollm.training.checkpoint import load_model_from_checkpoint
    from tests.integration._hf_dirs import make_llama_dir

    base, run = tmp_path / "llama", tmp_path / "run"
    _, tok = make_llama_dir(base)
    (tmp_path / "data.json").write_text(json.dumps(records))
    cfg = write_config(tmp_path, init=str(base), format="llama3", max_length=256)
    assert main(["sft", "--config", str(cfg), "train.max_iters=2"]) == 0
    shutil.rmtree(base)
    capsys.readouterr()

    prompt = "hello world"
    ids = tok.encode(prompt).ids
    model, _ = load_model_from_checkpoint(find_checkpoint(run))
    new = generate(model, torch.tensor([ids]), 12)[0, len(ids) :].tolist()
    want = tok.decode(new, skip_special_tokens=False)
    argv = ["generate", str(run), "--prompt", prompt, "--strategy", "greedy",
            "--max-new-tokens", "12"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out == prompt + want + "\n"

    lines = iter(["hello", "/exit"])
    monkeypatch.setattr("builtins.input", lambda _prompt: next(lines))
    assert main(["chat", str(run), "--strategy", "greedy", "--max-new-tokens", "4"]) == 0
    assert "(llama3 format)" in capsys.readouterr().out  # the format the run trained with

    (run / "tokenizer" / "tokenizer.json").unlink()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "tokenizer/tokenizer.json" in err and "not found" in err
    assert "--tokenizer PATH" in err


@pytest.mark.filterwarnings("ignore:.*truncated")  # char ids: a few records exceed 320
def test_full_ft_from_checkpoint_resumes_exactly(tmp_path, records, char_checkpoint):
    (tmp_path / "a").mkdir()
    full = write_config(tmp_path / "a", init=str(char_checkpoint))
    (tmp_path / "a" / "data.json").write_text(json.dumps(_ascii(records)))
    assert main(["sft", "--config", str(full), "train.max_iters=8"]) == 0
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "data.json").write_text(json.dumps(_ascii(records)))
    part = write_config(tmp_path / "b", init=str(char_checkpoint))
    assert main(["sft", "--config", str(part)]) == 0
    assert main(["sft", "--config", str(part), "train.max_iters=8", "--resume"]) == 0
    a, b = _losses(tmp_path / "a" / "run"), _losses(tmp_path / "b" / "run")
    for step in range(5, 9):
        assert a[step] == pytest.approx(b[step], abs=1e-6)
    assert not (tmp_path / "a" / "run" / "adapter").exists()


@pytest.mark.filterwarnings("ignore:.*truncated")
def test_chat_template_format(tmp_path, records, char_checkpoint):
    """The plain chat template (a tokenizer with only <|endoftext|>), with a system prompt,
    training on packed sequences."""
    from legollm.core.tokenization.specs import load_tokenizer
    from legollm.finetuning.formats import get_format
    from legollm.training.checkpoint import load_checkpoint

    (tmp_path / "data.json").write_text(json.dumps(_ascii(records)))
    cfg = write_config(tmp_path, init=str(char_checkpoint), format="plain", system="Be brief.",
                       pack=True)  # fmt: skip
    assert main(["sft", "--config", str(cfg), "train.max_iters=2"]) == 0
    responses = json.loads((tmp_path / "run" / "test_responses.json").read_text())
    assert len(responses) == 3 and all("response" in r for r in responses)
    tok = load_tokenizer(load_checkpoint(tmp_path / "run" / "latest.pt")["tokenizer"])
    prompt = tok.decode(get_format("plain", system="Be brief.").prompt_ids(responses[0], tok))
    assert prompt.startswith("### System:\nBe brief.") and prompt.endswith("### Assistant:\n")


@pytest.mark.filterwarnings("ignore:.*truncated")
def test_bad_input_is_a_one_line_error(tmp_path, records, char_checkpoint, capsys):
    bad = _ascii(records[:10])
    del bad[3]["output"]
    (tmp_path / "data.json").write_text(json.dumps(bad))
    cfg = write_config(tmp_path, init=str(char_checkpoint))
    assert main(["sft", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "record 3" in err and "on_bad_record=skip" in err
    (tmp_path / "data.json").write_text(json.dumps(_ascii(records[:10])))
    assert main(["sft", "--config", str(cfg), "--lora", "targets=blocks.*.attn.c_attn"]) == 1
    assert "match no nn.Linear" in capsys.readouterr().err
    (tmp_path / "data.json").write_text("[]")
    assert main(["sft", "--config", str(cfg)]) == 1
    assert "no records" in capsys.readouterr().err
    assert main(["sft", "--config", str(cfg), "init=nope"]) == 1
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "sft").glob("*.yaml")), ids=str)
def test_shipped_sft_configs_parse(path):
    from legollm.finetuning.sft import SFTConfig

    cfg = SFTConfig.from_yaml(path)
    # the shared instruction data, or the records `legollm grpo-task` writes
    assert Path(ROOT / cfg.data).name in {"instruction_data.json", "sft.json"}
    cfg.train_config()
    if cfg.lora:
        cfg.lora_config()
