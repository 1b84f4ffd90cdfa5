"""``legollm estimate --config FILE.yaml [key=value ...]``: will this run fit?

Reads the same train config as ``legollm train`` and prints, before any weight is
made (the model is built on the meta device), the memory per rank under DDP and
under FSDP, with the activations of each memory saver, and a verdict against the
device's memory (``--device-memory GB``, or the GPU here, or this machine's RAM).
The arithmetic is legollm/training/memory.py.

    legollm estimate --config configs/train/gpt2_124m.yaml
    legollm estimate model=llama3:llama-3.2-1b batch_size=4 block_size=2048 \\
        --dtype bf16 --world-size 8 --device-memory 80
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="memory a training config needs per rank, and if it fits")
    p.add_argument("--config", help="a YAML train config (default: the TrainConfig defaults)")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="override fields, e.g. batch_size=4"
    )
    p.add_argument("--world-size", type=int, help="ranks (default: $WORLD_SIZE or 1)")
    p.add_argument(
        "--dtype", choices=("fp32", "bf16", "fp16"),
        help="compute dtype (default: what the config's precision picks on this machine)",
    )  # fmt: skip
    p.add_argument("--device-memory", type=float, metavar="GB",
                   help="memory per device in GB (default: this GPU's, else this machine's RAM)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from legollm.core.exceptions import ConfigError
    from legollm.training.config import TrainConfig
    from legollm.training.memory import estimate_memory, format_estimate

    if args.config:
        cfg = TrainConfig.from_yaml(args.config, args.overrides)
    else:
        from legollm.training.config import apply_overrides

        cfg = TrainConfig.from_dict(apply_overrides({}, args.overrides))
    world = args.world_size
    if world is None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 1:
        raise ConfigError(f"--world-size must be >= 1, got {world}")
    mcfg = model_config(cfg)
    memory, where = device_memory(args.device_memory)
    est = estimate_memory(mcfg, cfg, world, args.dtype or default_dtype(cfg))
    print(format_estimate(est, memory, where))
    return 0


def model_config(cfg):
    """The run's ModelConfig: vocab_size from the data (as training takes it), else the
    preset's own; context_length from block_size."""
    from pathlib import Path

    from legollm.core.exceptions import ConfigError
    from legollm.data.meta import read_meta
    from legollm.models import ModelConfig
    from legollm.models.presets import get_preset
    from legollm.training.presets import MODEL_PRESETS
    from legollm.training.run import model_config_dict

    if cfg.data_dir and (Path(cfg.data_dir) / "meta.json").is_file():
        vocab = read_meta(Path(cfg.data_dir))["vocab_size"]
    elif isinstance(cfg.model, str):
        vocab = get_preset(MODEL_PRESETS.get(cfg.model, cfg.model)).vocab_size
    elif "vocab_size" in cfg.model:
        vocab = cfg.model["vocab_size"]
    else:
        raise ConfigError(
            "the vocabulary size is unknown: set data_dir to a prepared dataset, or "
            "model.vocab_size=N"
        )
    return ModelConfig.from_dict(model_config_dict(cfg, {"vocab_size": vocab}))


def default_dtype(cfg) -> str:
    """The dtype ``precision`` resolves to on this machine's training device."""
    from legollm.core.runtime import resolve_device, resolve_precision

    dtype = resolve_precision(cfg.precision, resolve_device(cfg.device))
    return {None: "fp32"}.get(dtype, str(dtype).removeprefix("torch.").replace("bfloat16", "bf16")
                              .replace("float16", "fp16"))  # fmt: skip


def device_memory(gb: float | None) -> tuple[int | None, str]:
    """Bytes of memory per device, and what they are: given, this GPU's, or the RAM."""
    import torch

    from legollm.training.run import device_memory as memory_of

    if gb is not None:
        return int(gb * 1e9), "given"
    if torch.cuda.is_available():
        return memory_of(torch.device("cuda", 0)), torch.cuda.get_device_name(0)
    return memory_of(torch.device("cpu")), "this machine's RAM"
