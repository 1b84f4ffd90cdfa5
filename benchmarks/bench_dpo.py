"""DPO on the shared preference data: LegoLLM's `dpo` vs TRL's DPOTrainer, same base, same
pairs, same hyper-parameters, in one process.

The base is bench_sft_lora.py's small GPT-2-BPE model (4 layers, 128 dim; pretrained
a few hundred steps on the Python docs, cached in OUT/base_N). Both sides train every
weight for the same number of steps on the same train split (Alpaca prompts; chosen
and rejected responses end with <|endoftext|>), AdamW with the same betas, constant
learning rate, no weight decay, gradient clipping at 1. TRL gets the base exported
with ``save_pretrained`` and GPT-2's tokenizer, and gradient checkpointing off (its
default turns it on, which trades time for memory); its default keeps a reference model
and runs it every step, ours computes the reference log-probabilities once before
training (that pass is counted in our time; it costs about one epoch of forwards,
so the default is one epoch of steps).

Both trained models are then scored the same way, by our code, on the held-out
validation pairs: preference accuracy (chosen reward > rejected reward), mean reward
margin and DPO loss, with the base as the reference.

    uv run --group bench python benchmarks/bench_dpo.py            # trl is in the bench group
    uv run python benchmarks/bench_dpo.py --steps 4 --pretrain-iters 20 --skip-trl   # smoke
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
from bench_sft_lora import SHARED, pretrained_base  # noqa: E402

PREFERENCES = SHARED / "instruct" / "preference_data.json"


def ours(args, base: Path, out: Path):
    from legollm.finetuning.dpo import DPOConfig, build_dpo_trainer

    cfg = DPOConfig(
        init=str(base), data=str(PREFERENCES), max_length=args.max_length, max_test_responses=0,
        beta=args.beta, split_seed=123,
        train={"run_dir": str(out / "legollm"), "batch_size": args.batch_size,
               "max_iters": args.steps, "lr": args.lr, "min_lr": args.lr, "warmup_iters": 0,
               "schedule": "constant", "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999,
               "grad_clip": 1.0, "eval_interval": 10**9, "eval_iters": 1,
               "log_interval": max(1, args.steps // 5), "save_checkpoints": False,
               "progress": False, "plot": False, "device": "cpu", "precision": "fp32",
               "threads": args.threads, "seed": 1337},
    )  # fmt: skip
    t0 = time.perf_counter()
    trainer = build_dpo_trainer(cfg)
    setup = time.perf_counter() - t0  # loading, tokenizing and the reference pass
    before = trainer.preference_metrics()
    t0 = time.perf_counter()
    trainer.fit()
    train_s = time.perf_counter() - t0
    return trainer, setup, train_s, before, trainer.preference_metrics()


def trl_run(args, base: Path, out: Path):
    """TRL's DPOTrainer on the base exported to an HF directory; returns the trained dir."""
    from datasets import Dataset
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer as TRLTrainer

    from legollm.finetuning.dataset import load_records, split_records
    from legollm.finetuning.dpo import PREFERENCE_FIELDS
    from legollm.finetuning.formats import AlpacaFormat
    from legollm.models import save_pretrained
    from legollm.training.checkpoint import load_model_from_checkpoint

    hf_dir = out / "base_hf"
    model, _ = load_model_from_checkpoint(base)
    save_pretrained(model, hf_dir, model_type="gpt2")
    # GPT-2's BPE through HF tokenizers (transformers 5's GPT2TokenizerFast(vocab_file=...)
    # comes out empty); the same ids as ours and tiktoken's
    bpe = Tokenizer(models.BPE.from_file(str(SHARED / "gpt2" / "encoder.json"),
                                         str(SHARED / "gpt2" / "vocab.bpe")))  # fmt: skip
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>")  # fmt: skip
    records = load_records(PREFERENCES, required=PREFERENCE_FIELDS)
    train_r, _, _ = split_records(records, 0.05, 0.1, 123)  # as DPOConfig's defaults split
    fmt = AlpacaFormat()
    data = Dataset.from_list([{"prompt": fmt.prompt_text(r), "chosen": r["chosen"],
                               "rejected": r["rejected"]} for r in train_r])  # fmt: skip
    torch.manual_seed(1337)
    hf = AutoModelForCausalLM.from_pretrained(hf_dir)
    targs = TRLConfig(
        output_dir=str(out / "trl"), per_device_train_batch_size=args.batch_size,
        max_steps=args.steps, learning_rate=args.lr, lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999, max_grad_norm=1.0,
        beta=args.beta, max_length=args.max_length, report_to=[], save_strategy="no",
        logging_steps=max(1, args.steps // 5), use_cpu=True, bf16=False, seed=1337,
        dataloader_num_workers=0, disable_tqdm=True,
        gradient_checkpointing=False,  # TRL's default recomputes activations: not like for like
    )  # fmt: skip
    trainer = TRLTrainer(model=hf, args=targs, train_dataset=data, processing_class=tok)
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    trained = out / "trl_trained"
    trainer.model.save_pretrained(trained)
    return trained, train_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "legollm_bench_dpo"))
    ap.add_argument("--pretrain-iters", type=int, default=400)
    ap.add_argument("--steps", type=int, default=117, help="117 x 8 pairs: one epoch")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-trl", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = pretrained_base(out, args.pretrain_iters, args.threads)

    trainer, setup_s, train_s, before, after = ours(args, base, out)
    rows = {"base (before training)": before, "legollm dpo": after}
    times = {"legollm dpo": (train_s, setup_s)}
    if not args.skip_trl:
        from legollm.models import load_pretrained

        trained, trl_s = trl_run(args, base, out)
        torch.set_num_threads(args.threads)
        rows["TRL DPOTrainer"] = trainer.preference_metrics(model=load_pretrained(trained))
        times["TRL DPOTrainer"] = (trl_s, 0.0)

    n_val = len(trainer.run.val)
    print(f"\nDPO, {args.steps} steps of {args.batch_size} pairs, beta {args.beta}, lr {args.lr}, "
          f"fp32, {args.threads} threads; scored on {n_val} held-out pairs:")  # fmt: skip
    print("| model | val accuracy | reward margin | val DPO loss |\n| --- | --- | --- | --- |")
    for name, m in rows.items():
        print(f"| {name} | {m['accuracy']:.3f} | {m['margin']:.4f} | {m['loss']:.4f} |")
    for name, (t, extra) in times.items():
        total = t + extra
        note = f" (+ {extra:.1f} s setup incl. the reference pass)" if extra else ""
        print(f"{name}: {t:.1f} s training{note}, {args.steps / total:.2f} steps/s overall")
    if "TRL DPOTrainer" in times:
        ours_total = sum(times["legollm dpo"])
        print(f"time ratio TRL / legollm: {times['TRL DPOTrainer'][0] / ours_total:.2f}x")
    (out / "results.json").write_text(json.dumps({"rows": rows, "times": times}, indent=2))


if __name__ == "__main__":
    main()
