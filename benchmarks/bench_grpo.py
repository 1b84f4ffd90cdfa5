"""GRPO on one-digit addition: LegoLLM's `grpo` vs TRL's GRPOTrainer, same base, same task,
same group size, batch, steps and hyper-parameters, in one process.

The base is a small char-level model (configs/sft/addition_cpu.yaml's shape: 2 layers,
128 dim) taught the task's format by a short SFT with our `sft` (cached in OUT/sft_N).
TRL gets it exported with ``save_pretrained`` (GPT-2 layout) and the same character
vocabulary as an HF ``tokenizers`` tokenizer. Both sides then run GRPO with the
exact-match reward: P prompts x G answers per step sampled at temperature 1, group-
standardised advantages, one clipped update per rollout (eps 0.2), no KL term (TRL's
default beta 0), the loss averaged over every answer token of the batch (TRL's
``loss_type="dapo"``), AdamW at a constant learning rate, fp32, no dropout.

Printed side by side: seconds per step (generation and update, from the trainers' own
loops), the mean rollout reward over the steps in windows, and the greedy reward of
both trained models on the same held-out prompts, scored by our code.

    uv run --group bench python benchmarks/bench_grpo.py          # trl is in the bench group
    uv run python benchmarks/bench_grpo.py --skip-trl --steps 10
    uv run python benchmarks/bench_grpo.py --smoke   # tiny sizes; TRL only if installed
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _smoke import installed, parse_args, skipped  # noqa: E402

TASK_ARGS = {"digits": 1}


def sft_base(out: Path, args) -> Path:
    """A fresh char-level model taught the task's format by ``args.sft_iters`` SFT steps."""
    run = out / f"sft_{args.sft_iters}_{args.n_embd}"
    if (run / "latest.pt").is_file():
        return run
    from legollm.alignment.tasks import get_task, sft_records, task_tokenizer
    from legollm.finetuning.sft import SFTConfig, run_sft
    from legollm.models import DecoderLM, ModelConfig
    from legollm.training.checkpoint import save_checkpoint

    tok = task_tokenizer()
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, context_length=64, n_layer=2, n_head=4,
                      n_embd=args.n_embd)  # fmt: skip
    save_checkpoint(out / "base.pt", {"model": DecoderLM(cfg).state_dict(),
                                      "model_config": cfg.to_dict(), "tokenizer": tok.spec()})  # fmt: skip
    data = out / "sft.json"
    data.write_text(json.dumps(sft_records(get_task("addition", TASK_ARGS), 2000, seed=0)))
    run_sft(SFTConfig(
        init=str(out / "base.pt"), data=str(data), format="dialogue", test_fraction=0.0,
        max_length=64,
        train={"run_dir": str(run), "batch_size": 32, "max_iters": args.sft_iters, "lr": 3e-3,
               "min_lr": 3e-4, "warmup_iters": min(20, args.sft_iters // 4),
               "weight_decay": 0.0, "eval_interval": 10**9, "eval_iters": 1,
               "progress": False, "plot": False, "device": "cpu", "precision": "fp32",
               "threads": args.threads, "seed": 123},
    ))  # fmt: skip
    return run


def ours(args, base: Path, out: Path):
    """Our GRPO; returns (seconds per step, rollout rewards by step, trainer)."""
    from legollm.alignment.grpo import GRPOConfig, build_grpo_trainer

    cfg = GRPOConfig(
        init=str(base), task="addition", task_args=TASK_ARGS, group_size=args.group_size,
        max_new_tokens=args.max_new_tokens, temperature=1.0, clip=0.2, kl_coef=0.0,
        eval_prompts=args.eval_prompts, max_test_responses=0,
        train={"run_dir": str(out / "legollm"), "batch_size": args.prompts,
               "max_iters": args.steps, "lr": args.lr, "min_lr": args.lr,
               "schedule": "constant", "warmup_iters": 0, "weight_decay": 0.0,
               "beta1": 0.9, "beta2": 0.999, "grad_clip": 1.0, "eval_interval": 10**9,
               "log_interval": 1, "save_checkpoints": False, "progress": False,
               "plot": False, "device": "cpu", "precision": "fp32",
               "threads": args.threads, "seed": 1337},
    )  # fmt: skip
    trainer = build_grpo_trainer(cfg)
    trainer.eval_records, held_out = [], trainer.eval_records  # score after, not inside
    t0 = time.perf_counter()
    trainer.fit()
    per_step = (time.perf_counter() - t0) / args.steps
    trainer.eval_records = held_out
    rewards = [r["reward"] for r in trainer.history if "reward" in r]
    return per_step, rewards, trainer


def hf_tokenizer(tok):
    """Our character vocabulary as an HF fast tokenizer: one piece per character."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(tok.chars)} | dict(tok.special_tokens)
    hf = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    hf.decoder = decoders.Fuse()
    out = PreTrainedTokenizerFast(tokenizer_object=hf, eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>")  # fmt: skip
    out.padding_side = "left"
    return out


def trl_run(args, base: Path, out: Path, trainer):
    """TRL's GRPOTrainer on the base exported to an HF directory; returns (s/step, rewards,
    the trained model as ours)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer as TRLTrainer

    from legollm.alignment.tasks import exact_match
    from legollm.models import load_pretrained, save_pretrained
    from legollm.models.loading import load_model

    loaded = load_model(base)
    hf_dir = out / "base_hf"
    save_pretrained(loaded.model, hf_dir, model_type="gpt2")
    tok = hf_tokenizer(loaded.tokenizer)
    sample = "User:\nWhat is 3 + 4?\n\nAssistant:\n7"
    assert tok(sample)["input_ids"] == loaded.tokenizer.encode(sample), "tokenizers differ"
    fmt, loader = trainer.run.format, trainer.train_loader
    import random

    rng = random.Random(1337)
    rows = [loader.task.sample(rng) for _ in range(args.steps * args.prompts)]
    data = Dataset.from_list([{"prompt": tok.decode(fmt.prompt_ids(r, loaded.tokenizer)),
                               "answer": r["answer"]} for r in rows])  # fmt: skip

    def reward(completions, answer, **_):
        return [exact_match(c, {"answer": a}) for c, a in zip(completions, answer, strict=True)]

    torch.manual_seed(1337)
    hf = AutoModelForCausalLM.from_pretrained(hf_dir)
    eot = loaded.tokenizer.eot_token_id
    hf.config.eos_token_id = hf.config.pad_token_id = hf.config.bos_token_id = eot
    hf.generation_config.eos_token_id = hf.generation_config.pad_token_id = eot
    hf.generation_config.bos_token_id = eot
    targs = TRLConfig(
        output_dir=str(out / "trl"), per_device_train_batch_size=args.prompts * args.group_size,
        num_generations=args.group_size, max_completion_length=args.max_new_tokens,
        temperature=1.0, top_p=1.0, beta=0.0, epsilon=0.2, num_iterations=1,
        loss_type="dapo", scale_rewards="group", max_steps=args.steps,
        learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999, max_grad_norm=1.0,
        logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, bf16=False,
        seed=1337, dataloader_num_workers=0, disable_tqdm=True, disable_dropout=True,
        gradient_checkpointing=False, shuffle_dataset=False,
    )  # fmt: skip
    trl = TRLTrainer(model=hf, reward_funcs=reward, args=targs, train_dataset=data,
                     processing_class=tok)  # fmt: skip
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    trl.train()
    per_step = (time.perf_counter() - t0) / args.steps
    rewards = [r["reward"] for r in trl.state.log_history if "reward" in r]
    trl.model.save_pretrained(out / "trl_trained")
    return per_step, rewards, load_pretrained(out / "trl_trained")


def windows(values: list[float], n: int) -> list[float]:
    """The mean of ``values`` in ``n`` consecutive windows (the reward curve, condensed)."""
    size = max(1, len(values) // n)
    return [sum(values[i : i + size]) / len(values[i : i + size])
            for i in range(0, len(values), size)][:n]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "legollm_bench_grpo"))
    ap.add_argument("--sft-iters", type=int, default=600)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--prompts", type=int, default=16, help="prompts per step")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--eval-prompts", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-trl", action="store_true")
    smoke = dict(sft_iters=4, n_embd=32, steps=2, prompts=2, group_size=2, eval_prompts=4,
                 threads=1)  # fmt: skip
    args = parse_args(ap, smoke)
    if args.smoke and "--out" not in sys.argv:
        args.out = tempfile.mkdtemp(prefix="legollm_smoke_grpo_")
    if not args.skip_trl and not (installed("trl") and installed("datasets")):
        skipped("TRL GRPOTrainer", "trl is not installed (uv sync --group bench)")
        args.skip_trl = True
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = sft_base(out, args)

    our_s, our_rewards, trainer = ours(args, base, out)
    before = None
    rows = {"legollm grpo": (our_s, our_rewards, trainer.eval_reward())}
    if not args.skip_trl:
        trl_s, trl_rewards, trl_model = trl_run(args, base, out, trainer)
        torch.set_num_threads(args.threads)
        trainer.raw_model = trl_model  # scored by our code, on the same prompts
        rows["TRL GRPOTrainer"] = (trl_s, trl_rewards, trainer.eval_reward())
    from legollm.models.loading import load_model

    trainer.raw_model = load_model(base).model
    before = trainer.eval_reward()

    print(f"\nGRPO on one-digit addition: {args.steps} steps of {args.prompts} prompts x "
          f"{args.group_size} answers, lr {args.lr}, fp32, {args.threads} threads; the SFT "
          f"base answers {before:.3f} of {args.eval_prompts} held-out prompts greedily")  # fmt: skip
    print("| trainer | s / step | rollout reward by fifths of the run | held-out greedy reward |")
    print("| --- | --- | --- | --- |")
    for name, (s, rewards, held_out) in rows.items():
        curve = " -> ".join(f"{r:.3f}" for r in windows(rewards, 5))
        print(f"| {name} | {s:.3f} | {curve} | {held_out:.3f} |")
    if "TRL GRPOTrainer" in rows:
        print(f"time per step ratio TRL / legollm: {rows['TRL GRPOTrainer'][0] / our_s:.2f}x")
    else:  # no anchor: say so on the line a reader (and the smoke test) looks for
        print(f"time per step ratio TRL / legollm: skipped (no TRL run); legollm {our_s:.3f} s")
    (out / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
