"""Alignment by reinforcement learning: a reward model, PPO (RLHF) and GRPO.

``losses`` holds the math (each formula beside its code); ``reward`` the reward
model; ``ppo`` and ``grpo`` the two policy-gradient loops on the project's Trainer.
Import from the modules themselves.
"""
