"""`legollm train strategy=fsdp` as one process (`python`, not torchrun): it trains the
same steps as the unsharded path, resumes from its sharded checkpoint exactly, and
`legollm consolidate` turns that into the file every other command loads."""

import json

import pytest
import torch

from legollm.cli.main import main
from legollm.models.loading import load_model
from tests.integration.test_training_cli import _config, data_dir  # noqa: F401 (fixture)


def _losses(run_dir):
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in recs if "loss" in r}


def test_fsdp_trains_resumes_and_consolidates_in_one_process(tmp_path, data_dir, capsys):  # noqa: F811
    plain, full, part = (tmp_path / n for n in ("plain", "full", "part"))
    for d in (plain, full, part):
        d.mkdir()
    assert main(["train", "--config", str(_config(plain, data_dir))]) == 0
    assert main(["train", "--config", str(_config(full, data_dir)), "strategy=fsdp"]) == 0
    assert "checkpoint: " + str(full / "run" / "latest.dcp") in capsys.readouterr().out
    cfg = str(_config(part, data_dir, strategy="fsdp"))
    assert main(["train", "--config", cfg, "max_iters=4"]) == 0
    assert main(["train", "--config", cfg, "--resume"]) == 0
    ref, sharded, resumed = (_losses(d / "run") for d in (plain, full, part))
    assert sharded.keys() == ref.keys() == resumed.keys() == set(range(1, 9))
    for step, loss in ref.items():  # dropout 0.1: the same random draws on both paths
        assert abs(sharded[step] - loss) <= 1e-5 and abs(resumed[step] - loss) <= 1e-5

    # one .pt beside the shards, loaded (with its tokenizer) by the one loader
    capsys.readouterr()
    err = main(["generate", str(part / "run"), "--prompt", "To", "--max-new-tokens", "2"])
    assert err == 1 and "legollm consolidate" in capsys.readouterr().err
    assert main(["consolidate", str(part / "run")]) == 0
    assert capsys.readouterr().out.split() == [str(part / "run" / "best.pt"),
                                               str(part / "run" / "latest.pt")]  # fmt: skip
    loaded = load_model(part / "run")
    plain_model = load_model(plain / "run" / "latest.pt").model.state_dict()
    for k, v in load_model(part / "run" / "latest.pt").model.state_dict().items():
        torch.testing.assert_close(v, plain_model[k], rtol=0, atol=1e-5, msg=k)
    assert loaded.tokenizer.decode(loaded.tokenizer.encode("To be")) == "To be"
    # that file has no optimizer state, so it does not pass for a ddp run's checkpoint
    capsys.readouterr()
    assert main(["train", "--config", cfg, "strategy=ddp", "max_iters=9", "--resume"]) == 1
    assert "no optimizer state" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "data"), [("sft", "instruction_data.json"),
                                               ("dpo", "preference_data.json")])  # fmt: skip
def test_finetuning_with_lora_under_fsdp_matches_ddp(
    command, data, tmp_path, shared_data, hf_gpt2_dir, capsys
):
    """Frozen base weights and LoRA adapters shard together; after training the adapter
    and the test answers come from the model gathered back on rank 0."""
    from tests.integration._finetune import write_config

    records = json.loads((shared_data / "instruct" / data).read_text())[:40]
    runs = {}
    for strategy in ("ddp", "fsdp"):
        d = tmp_path / strategy
        d.mkdir()
        (d / "data.json").write_text(json.dumps(records))
        cfg = write_config(d, init=str(hf_gpt2_dir))
        lora = ["--lora", "r=4,alpha=8,targets=attn"]
        assert main([command, "--config", str(cfg), f"train.strategy={strategy}", *lora]) == 0
        runs[strategy] = d / "run"
    assert "adapter:" in capsys.readouterr().out
    ddp, fsdp = _losses(runs["ddp"]), _losses(runs["fsdp"])
    assert fsdp.keys() == ddp.keys() and len(ddp) == 4
    assert all(abs(fsdp[s] - ddp[s]) <= 1e-5 for s in ddp)
    answers = [json.loads((r / "test_responses.json").read_text()) for r in runs.values()]
    assert answers[0] == answers[1] and len(answers[0]) == 3
    from safetensors.torch import load_file

    a, b = (load_file(r / "adapter" / "adapter_model.safetensors") for r in runs.values())
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5, msg=k)
