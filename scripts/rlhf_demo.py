"""RLHF end to end in about a minute on a CPU: a reward model, then PPO against it.

    python scripts/rlhf_demo.py --out runs/rlhf_demo

The preference is one a reader can check: answers in lower case are preferred to
answers in upper case. A tiny character-level model (random weights) is the
starting policy; a reward model trained from it on such pairs learns the
preference (held-out pair accuracy before -> after), and PPO (full tuning) then raises
the reward of the policy's own answers,
while the KL to the starting model grows from 0.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from pathlib import Path


def pairs(n: int, rng: random.Random) -> list[dict[str, str]]:
    out = []
    for _ in range(n):
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8)))
        other = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8)))
        out.append({"instruction": "Say a word.", "input": word[:2],
                    "chosen": word, "rejected": other.upper()})  # fmt: skip
    return out


def base_checkpoint(path: Path) -> Path:
    import torch

    from legollm.core.tokenization.specs import CharTokenizer
    from legollm.models import DecoderLM, ModelConfig
    from legollm.training.checkpoint import save_checkpoint

    tok = CharTokenizer.from_text([" \n" + "".join(chr(c) for c in range(33, 127))])
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, context_length=256, n_layer=2, n_head=2,
                      n_embd=32, dropout=0.0)  # fmt: skip
    return save_checkpoint(path, {"model": DecoderLM(cfg).state_dict(),
                                  "model_config": cfg.to_dict(), "tokenizer": tok.spec()})  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/rlhf_demo")
    p.add_argument("--ppo-steps", type=int, default=60)
    args = p.parse_args()
    import torch

    from legollm.alignment.ppo import PPOConfig, build_ppo_trainer
    from legollm.alignment.reward import RewardConfig, build_reward_trainer

    torch.set_num_threads(1)  # tiny matrices: a second thread only waits
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    (out / "pairs.json").write_text(json.dumps(pairs(400, rng)))
    prompts = [{"instruction": "Say a word.", "input": r["input"]} for r in pairs(64, rng)]
    (out / "prompts.json").write_text(json.dumps(prompts))
    init = base_checkpoint(out / "base.pt")
    train = {"device": "cpu", "precision": "fp32", "progress": False, "plot": True,
             "log_interval": 5, "warmup_iters": 2, "weight_decay": 0.0}  # fmt: skip

    t0 = time.perf_counter()
    rm_cfg = RewardConfig.from_dict({
        "init": str(init), "data": str(out / "pairs.json"), "val_fraction": 0.1,
        "test_fraction": 0.0, "train": {**train, "run_dir": str(out / "reward_model"),
        "batch_size": 16, "max_iters": 40, "lr": 3e-3, "min_lr": 3e-4, "eval_interval": 40},
    })  # fmt: skip
    rm = build_reward_trainer(rm_cfg)
    before = rm.pair_metrics()["accuracy"]
    rm.fit()
    after = rm.pair_metrics()["accuracy"]
    t_rm = time.perf_counter() - t0
    print(f"reward model: held-out pair accuracy {before:.2f} -> {after:.2f} "
          f"({rm_cfg.train['max_iters']} steps, {t_rm:.0f} s)")  # fmt: skip

    t0 = time.perf_counter()
    ppo_cfg = PPOConfig.from_dict({
        "init": str(init), "data": str(out / "prompts.json"),
        "reward_model": str(out / "reward_model"), "rollout_size": 32, "ppo_epochs": 2,
        "max_new_tokens": 8, "kl_coef": 0.02,
        "train": {**train, "run_dir": str(out / "ppo"), "batch_size": 16,
                  "max_iters": args.ppo_steps, "lr": 3e-3, "min_lr": 3e-4,
                  "eval_interval": args.ppo_steps, "log_interval": 4},
    })  # fmt: skip
    ppo = build_ppo_trainer(ppo_cfg)
    ppo.fit()
    t_ppo = time.perf_counter() - t0
    records = [r for r in ppo.history if "reward" in r]
    first, last = records[:3], records[-3:]  # rewards of single rollouts are noisy

    def mean(rs, key):
        return sum(r[key] for r in rs) / len(rs)

    print(f"ppo: mean reward of the first / last 3 logged rollouts {mean(first, 'reward'):.2f}"
          f" -> {mean(last, 'reward'):.2f}, KL to the start {mean(first, 'kl'):.3f} -> "
          f"{mean(last, 'kl'):.3f}, entropy {mean(first, 'entropy'):.3f} -> "
          f"{mean(last, 'entropy'):.3f} ({ppo_cfg.train['max_iters']} steps, {t_ppo:.0f} s)")  # fmt: skip
    print(f"curves: {out / 'ppo' / 'metrics.jsonl'}, {out / 'ppo' / 'loss.png'}")


if __name__ == "__main__":
    main()
