"""The training loop: one optimizer step = ``grad_accum_steps`` micro-batches.

What one step does, and why:

1. Set the learning rate from the schedule (a pure function of the step, so resuming
   needs only the step number).
2. Fetch all micro-batches first and count their real targets (``y != -100``), summed
   over micro-steps and ranks. Each micro-step's *summed* loss is divided by that global
   count, so the gradient is that of the mean loss over every real token of the global
   batch, whatever the padding, accumulation or number of ranks
   (``loss_normalization="tokens"``). ``"micro_steps"`` divides each micro-batch mean by
   the number of micro-steps instead (nanoGPT's rule; equal when nothing is padded).
3. Backward each micro-step; under DDP, gradients are all-reduced only on the last one.
4. Clip the global gradient norm, step AdamW, zero the grads.

Evaluation runs every ``eval_interval`` steps on the same fixed validation batches,
then ``latest.pt`` is written (and ``best.pt`` when the val loss improved), from rank 0.
With ``strategy: fsdp`` (see :mod:`legollm.training.sharding`) the model and optimizer
are sharded across ranks, accumulation reduce-scatters every micro-step, and the
checkpoints are ``latest.dcp`` / ``best.dcp`` directories that every rank writes into.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch import nn

from legollm.core.exceptions import TrainingError
from legollm.core.runtime import resolve_device, resolve_precision, unwrap_model
from legollm.core.utils import atomic_write, remove_stale_temps
from legollm.models.config import ModelConfig
from legollm.models.decoder import count_active_parameters, count_parameters
from legollm.models.loss import chunked_lm_loss, lm_loss
from legollm.training.bits_per_byte import bits_per_byte, bytes_per_token, decoder_for
from legollm.training.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from legollm.training.config import TrainConfig
from legollm.training.distributed import current_dist_info
from legollm.training.logging import (
    ProgressBar,
    RunLogger,
    flops_per_token,
    peak_flops,
    plot_metrics,
    read_metrics,
)
from legollm.training.memory import peak_memory
from legollm.training.optim import build_optimizer
from legollm.training.schedule import lr_at
from legollm.training.sharding import (
    fsdp_model_and_optimizer,
    fsdp_param_dtype,
    gather_full_model,
    is_sharded_checkpoint,
    load_sharded,
    read_sharded_state,
    save_sharded,
    sharded_path,
)

IGNORE_INDEX = -100


class Trainer:
    """Trains a ``DecoderLM``-like model: ``model(x)`` returns the logits, and
    ``model.aux_loss(y, reduction)`` what to add to their cross-entropy (or None).

    ``train_loader`` / ``val_loader`` are :class:`~legollm.data.loader.TokenDataLoader`
    (anything with ``next_batch``, ``eval_batches``, ``state_dict``, ``load_state_dict``).
    A batch is ``(x, y)``, or ``(x, y, inputs)`` where the dict ``inputs`` holds more
    keyword arguments for the model (the ``document_ids`` of packed SFT rows).
    ``tokenizer`` is the data's tokenizer spec, stored in checkpoints for generation.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        train_loader: Any,
        val_loader: Any = None,
        run_dir: str | Path | None = None,
        tokenizer: dict[str, Any] | None = None,
    ):
        self.config = config
        self.run_dir = Path(run_dir or config.run_dir)
        self.dist = current_dist_info()
        self.device = resolve_device(config.device, self.dist.local_rank)
        if config.threads and self.device.type == "cpu":
            torch.set_num_threads(config.threads)
        self.raw_model = unwrap_model(model).to(self.device)
        self.train_loader, self.val_loader = train_loader, val_loader
        self.tokenizer = tokenizer
        self._check_data_fits_model()
        if config.activation_checkpointing:
            self._enable_activation_checkpointing()

        self.autocast_dtype = resolve_precision(config.precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        self.sharded = config.strategy == "fsdp"
        self.fsdp_dtype: torch.dtype | None = None  # bf16 compute through FSDP's policy
        if self.sharded:  # shards in place; the optimizer then holds only this rank's part
            self.raw_model, self.optimizer = fsdp_model_and_optimizer(
                self.raw_model, config, self.device
            )
            self.dist = current_dist_info()  # a single process now has a group of one
            self.fsdp_dtype = fsdp_param_dtype(config.precision, self.device)
            if self.fsdp_dtype is not None:
                self.autocast_dtype = None  # FSDP's mixed-precision policy casts instead
        else:
            self.optimizer = build_optimizer(
                self.raw_model,
                lr=config.lr,
                weight_decay=config.weight_decay,
                betas=(config.beta1, config.beta2),
                eps=config.eps,
                device_type=self.device.type,
                fused=config.fused_optimizer,
                decay=config.weight_decay_params,
            )
        self.model: nn.Module = self.raw_model
        self._compiled = False
        if config.compile:
            self.model, self._compiled = torch.compile(self.raw_model), True
        self.model = self._data_parallel(self.model)

        self.step = 0
        self.best_val_loss = math.inf
        self.history: list[dict[str, Any]] = []  # every logged record, also on non-zero ranks
        self._skip_eval_at: int | None = None
        self.is_main = self.dist.is_main
        self.logger: RunLogger | None = None
        self.tokens_per_step = (
            config.batch_size * config.block_size * config.grad_accum_steps * self.dist.world_size
        )

    def _data_parallel(self, model: nn.Module) -> nn.Module:
        """DDP around ``model`` on several ranks (an FSDP model syncs by itself)."""
        if not self.dist.is_distributed or self.sharded:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    # ------------------------------------------------------------------ checks
    def _check_data_fits_model(self) -> None:
        """Fail before the first step when the data cannot go through this model."""
        mcfg = getattr(self.raw_model, "config", None)
        vocab = getattr(mcfg, "vocab_size", None)
        ctx = getattr(mcfg, "context_length", None)
        data_vocab = getattr(self.train_loader, "vocab_size", None)
        if vocab is not None and data_vocab is not None and data_vocab > vocab:
            raise TrainingError(
                f"the data uses ids up to {data_vocab - 1} (vocab_size {data_vocab} in "
                f"meta.json) but the model's vocab_size is {vocab}; set model vocab_size >= "
                f"{data_vocab} (or leave it unset to take the data's)"
            )
        block = getattr(self.train_loader, "block_size", self.config.block_size)
        if ctx is not None and block > ctx:
            raise TrainingError(
                f"block_size {block} is larger than the model's context_length {ctx}; "
                f"lower block_size or raise context_length"
            )

    def _enable_activation_checkpointing(self) -> None:
        if not hasattr(self.raw_model, "activation_checkpointing"):
            raise TrainingError(
                f"activation_checkpointing: {type(self.raw_model).__name__} has no such switch "
                "(DecoderLM has); set activation_checkpointing: false"
            )
        self.raw_model.activation_checkpointing = True

    # ------------------------------------------------------------------ one step
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        if self.dist.is_distributed:
            dist.all_reduce(t)
        return t

    def train_step(self) -> torch.Tensor:
        """One optimizer step. Returns this rank's share of the step's mean loss (a tensor:
        no host sync here)."""
        cfg = self.config
        lr = lr_at(self.step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches = [self.train_loader.next_batch() for _ in range(cfg.grad_accum_steps)]
        by_tokens = cfg.loss_normalization == "tokens"
        if by_tokens:
            count = sum(self.loss_units(b) for b in batches).float()  # type: ignore[union-attr]
            count = self._all_reduce(count).clamp(min=1.0)
            scale = self.dist.world_size / count  # DDP averages over ranks: undo that
        else:
            scale = 1.0 / cfg.grad_accum_steps
        reported = torch.zeros((), device=self.device)
        last = len(batches) - 1
        for i, batch in enumerate(batches):
            sync = i == last or not isinstance(self.model, nn.parallel.DistributedDataParallel)
            ctx = contextlib.nullcontext() if sync else self.model.no_sync()  # type: ignore[operator]
            with ctx:
                with self._autocast():
                    loss = self.batch_loss(self.model, batch, "sum" if by_tokens else "mean")
                    loss = loss.float() * scale
                self.scaler.scale(loss).backward()
            reported += loss.detach() / self.dist.world_size  # all-reduce sums the shares
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return reported

    # The two hooks a trainer for another objective (DPO) overrides.
    def batch_loss(self, model: nn.Module, batch: tuple, reduction: str) -> torch.Tensor:
        """The batch's loss, summed over its units or their mean (``reduction``)."""
        x, y, *inputs = batch
        extra = inputs[0] if inputs else {}  # e.g. document_ids of packed rows
        chunk = self.config.loss_chunk_size
        if chunk:  # the head runs inside the loss, a slice of tokens at a time
            hidden = model(x, return_hidden=True, **extra)  # through the DDP / compile wrappers
            loss = self._chunked_loss(unwrap_model(model), hidden, y, chunk, reduction)
        else:
            logits = model(x, **extra)  # through the DDP / compile wrappers
            fused = self._compiled and model is self.model  # the step that can fall back
            loss = (_compiled_lm_loss() if fused else lm_loss)(logits, y, reduction)
        aux = unwrap_model(model).aux_loss(y, reduction)  # a mixture of experts' router balance
        return loss if aux is None else loss + aux

    def _chunked_loss(self, model, hidden, y, chunk: int, reduction: str) -> torch.Tensor:
        """``chunked_lm_loss`` through ``model``'s head. Under FSDP the root's weights (the
        head's among them) were resharded when the forward ended: gather them again; the
        backward pass then reduce-scatters the head's gradient with the root's, and
        reshards (without a backward, as in evaluation, reshard here)."""
        if self.sharded:
            model.unshard()
        loss = chunked_lm_loss(hidden, model.lm_head, y, chunk, reduction)
        if self.sharded and not torch.is_grad_enabled():
            model.reshard()
        return loss

    def loss_units(self, batch: tuple) -> torch.Tensor:
        """What the loss is averaged over: the batch's real (not -100) target tokens."""
        return (batch[1] != IGNORE_INDEX).sum()

    def _first_step_with_fallback(self) -> torch.Tensor:
        """Run the first step compiled; if compilation fails, warn and run it eagerly."""
        loader_state, rng = self.train_loader.state_dict(), rng_state()
        try:
            return self.train_step()
        except Exception as e:  # torch.compile raises many types; fall back on any
            self._print(f"torch.compile failed ({type(e).__name__}: {e}); training uneagerly")
            self._compiled = False
            self.optimizer.zero_grad(set_to_none=True)
            self.train_loader.load_state_dict(loader_state)
            set_rng_state(rng)
            self.model = self._data_parallel(self.raw_model)
            return self.train_step()

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, n_batches: int | None = None) -> float:
        """Mean loss per real token over the same fixed validation batches every time."""
        if self.val_loader is None:
            raise TrainingError("evaluate() needs a val_loader")
        n = self.config.eval_iters if n_batches is None else n_batches
        self.raw_model.eval()
        total = torch.zeros((), device=self.device)
        count = torch.zeros((), device=self.device)
        for batch in self.val_loader.eval_batches(n):
            with self._autocast():
                loss = self.batch_loss(self.raw_model, batch, "sum")
            total += loss.float()
            count += self.loss_units(batch)
        self.raw_model.train()
        self._all_reduce(total)
        self._all_reduce(count)
        return (total / count.clamp(min=1)).item()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint dict (plain data; see legollm.training.checkpoint)."""
        return {
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **self.run_state(),
        }

    def run_state(self) -> dict[str, Any]:
        """Everything a checkpoint holds but the weights and optimizer state: what a
        sharded checkpoint keeps beside its shards."""
        mcfg = getattr(self.raw_model, "config", None)
        return {
            "model_config": mcfg.to_dict() if hasattr(mcfg, "to_dict") else None,
            "lora": self._lora_dict(),  # None, or the adapters' config (legollm.peft)
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "step": self.step,
            "rng": rng_state(),
            "loader": self.train_loader.state_dict(),
            "best_val_loss": self.best_val_loss,
            "train_config": self.config.to_dict(),
            "tokenizer": self.tokenizer,
        }

    def _lora_dict(self) -> dict[str, Any] | None:
        lora = getattr(self.raw_model, "lora_config", None)
        return lora.to_dict() if lora is not None else None

    def checkpoint_path(self, stem: str = "latest") -> Path:
        """Where checkpoint ``stem`` goes: ``latest.pt``, or ``latest.dcp`` when sharded."""
        if self.sharded:
            return sharded_path(self.run_dir, stem)
        return self.run_dir / f"{stem}.pt"

    def save(self, stem: str = "latest") -> Path:
        """Write checkpoint ``stem``: rank 0 alone, or every rank its shards (fsdp)."""
        if self.sharded:
            return save_sharded(
                self.checkpoint_path(stem), self.raw_model, self.optimizer, self.run_state()
            )
        return save_checkpoint(self.checkpoint_path(stem), self.state_dict())

    def full_model(self) -> nn.Module | None:
        """The trained model whole, for what runs on rank 0 after training (generation,
        adapters): the model itself, or under fsdp a plain copy gathered from the shards
        (collective; None on the other ranks)."""
        if not self.sharded:
            return self.raw_model
        return gather_full_model(self.raw_model, self.device)

    def resume(self, path: str | Path) -> Trainer:
        """Continue from a checkpoint (a ``.pt`` file, a ``.dcp`` directory of shards,
        or a run dir's ``latest.pt``) exactly; a sharded one may come from another
        number of ranks (DCP reshards it)."""
        if self.sharded and Path(path).is_dir() and not is_sharded_checkpoint(path):
            path = sharded_path(path, "latest")  # a run dir
        sharded = is_sharded_checkpoint(path)
        if sharded != self.sharded and (sharded or Path(path).is_file()):
            written, now = ("fsdp", "ddp") if sharded else ("ddp", "fsdp")
            raise TrainingError(
                f"checkpoint {path} was written by a strategy {written} run and this one is "
                f"{now}; resume with strategy={written} (or consolidate it: legollm "
                "consolidate RUN_DIR, then fine-tune from the .pt)"
            )
        ckpt = read_sharded_state(path) if self.sharded else load_checkpoint(path)
        mcfg = getattr(self.raw_model, "config", None)
        mine = mcfg.to_dict() if hasattr(mcfg, "to_dict") else None
        theirs = ckpt["model_config"]
        if isinstance(mcfg, ModelConfig):  # fields added since it was written take defaults
            theirs = ModelConfig.from_dict(theirs).to_dict()
        if mine is not None and theirs != mine:
            diff = sorted(k for k in mine if theirs.get(k) != mine[k])
            raise TrainingError(
                f"checkpoint {path} was trained with a different model config (differs in "
                f"{diff}); resume with the same model settings or start a new run_dir"
            )
        if ckpt.get("lora") != self._lora_dict():
            raise TrainingError(
                f"checkpoint {path} has LoRA adapters {ckpt.get('lora')} but this model has "
                f"{self._lora_dict()}; resume with the same LoRA settings"
            )
        if self.sharded:
            load_sharded(path, self.raw_model, self.optimizer)
        elif ckpt.get("optimizer") is None:
            raise TrainingError(
                f"checkpoint {path} has weights but no optimizer state (consolidated from a "
                "sharded run): resume that run from its .dcp with strategy=fsdp, or start a "
                "new run from these weights"
            )
        else:
            self.raw_model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        self.train_loader.load_state_dict(ckpt["loader"])
        self.step = int(ckpt["step"])
        self.best_val_loss = float(ckpt["best_val_loss"])
        set_rng_state(ckpt["rng"])
        self._skip_eval_at = self.step  # evaluated (and saved) right before that checkpoint
        if self.is_main:
            self._truncate_metrics(self.step)
        return self

    def _truncate_metrics(self, step: int) -> None:
        """Drop records a crashed run logged after its last checkpoint (they are replayed)."""
        path = self.run_dir / "metrics.jsonl"
        kept = [r for r in read_metrics(path) if r.get("step", 0) <= step]
        if path.is_file():
            with atomic_write(path) as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)

    # ------------------------------------------------------------------ the loop
    def _print(self, msg: str) -> None:
        if self.is_main:
            print(msg, flush=True)

    def banner(self) -> str:
        """What is about to run, for the user to check before the first step."""
        cfg, world = self.config, self.dist.world_size
        dtype = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]
        amp = "" if self.autocast_dtype is None else " autocast"
        if self.fsdp_dtype is not None:
            dtype, amp = "bf16", " (FSDP mixed precision, fp32 master weights)"
        ranks = f" x {world} ranks" if world > 1 else ""
        if self.sharded:
            ranks += ", sharded with fsdp"
        action = f"resuming at step {self.step}" if self.step else "starting"
        return "\n".join(
            [
                f"training {type(self.raw_model).__name__}: "
                f"{count_parameters(self.raw_model):,} parameters, {action}, "
                f"{cfg.max_iters:,} steps in all",
                f"device {self.device}, precision {dtype}{amp} (precision={cfg.precision})",
                f"{self.tokens_per_step:,} tokens per step (batch {cfg.batch_size} x block "
                f"{cfg.block_size} x {cfg.grad_accum_steps} accumulation{ranks})",
                f"writing to {self.run_dir.resolve()}",
            ]
        )

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.logger is not None:
            self.logger.log(record)

    def _checkpoint_point(self, bar: ProgressBar) -> None:
        record: dict[str, Any] = {"step": self.step}
        improved = False
        if self.val_loader is not None and self.config.eval_iters > 0:
            val = self.evaluate()
            record["val_loss"] = val
            bpb = self._val_bits_per_byte(val)
            if bpb is not None:
                record["val_bpb"] = bpb
            improved = val < self.best_val_loss
            if improved:
                self.best_val_loss = val
            if self.is_main:
                shown = f", {bpb:.4f} bits/byte" if bpb is not None else ""
                bar.write(f"step {self.step}: val loss {val:.4f}{shown}")
            self._log(record)
        if (self.is_main or self.sharded) and self.step > 0 and self.config.save_checkpoints:
            self.save("latest")
            if improved:
                self.save("best")

    # the validation loss is next-token cross-entropy in nats, so it converts to bits per
    # byte; objectives with another loss (DPO, a reward model, PPO, GRPO) turn it off
    val_loss_is_token_nll: ClassVar[bool] = True
    _val_bytes_per_token: float | None | bool = False  # False: not measured yet

    def _val_bits_per_byte(self, val_loss: float) -> float | None:
        """Validation loss in bits per byte (None when the tokenizer cannot decode)."""
        if not self.val_loss_is_token_nll:
            return None
        if self._val_bytes_per_token is False:
            batches = self.val_loader.eval_batches(self.config.eval_iters)
            self._val_bytes_per_token = bytes_per_token(
                decoder_for(self.tokenizer, self.run_dir), batches
            )
        if self._val_bytes_per_token is None:
            return None
        return bits_per_byte(val_loss, self._val_bytes_per_token)

    def _mfu(self, tokens_per_s: float) -> float | None:
        peak = peak_flops(self.device)
        mcfg = getattr(self.raw_model, "config", None)
        if peak is None or mcfg is None:
            return None
        n_params = count_active_parameters(self.raw_model)  # a token's experts, not all
        head_dim = getattr(mcfg, "head_dim", None) or mcfg.n_embd // mcfg.n_head
        fpt = flops_per_token(n_params, mcfg.n_layer, mcfg.n_head, head_dim, self.config.block_size)
        return fpt * tokens_per_s / peak

    def fit(self) -> dict[str, Any]:
        """Train until ``max_iters``; returns a summary (final losses, tokens/s, paths)."""
        cfg = self.config
        if self.is_main:
            remove_stale_temps(self.run_dir)  # left by a save that was killed mid-write
            if cfg.progress:
                print(self.banner(), flush=True)
            if self.step == 0:  # a fresh run in an old run_dir: do not mix the two curves
                (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
            self.logger = RunLogger(
                self.run_dir, cfg.tensorboard, cfg.wandb, cfg.wandb_project, cfg.to_dict()
            )
        bar = ProgressBar(cfg.max_iters, self.step, enabled=self.is_main and cfg.progress)
        self.raw_model.train()
        t_last, steps_since = time.perf_counter(), 0
        tokens_per_s = 0.0
        start_step = self.step
        try:
            while True:
                at_end = self.step >= cfg.max_iters
                if (self.step % cfg.eval_interval == 0 or at_end) and (
                    self.step != self._skip_eval_at
                ):
                    self._checkpoint_point(bar)
                    t_last = time.perf_counter()
                if at_end:
                    break
                if self._compiled and self.step == start_step:
                    loss = self._first_step_with_fallback()
                else:
                    loss = self.train_step()
                self.step += 1
                steps_since += 1
                if self.step % cfg.log_interval == 0 or self.step == cfg.max_iters:
                    loss_val = self._all_reduce(loss).item()  # the one host sync
                    dt = time.perf_counter() - t_last
                    tokens_per_s = steps_since * self.tokens_per_step / max(dt, 1e-9)
                    record = {
                        "step": self.step,
                        "loss": loss_val,
                        "lr": lr_at(self.step - 1, cfg),
                        "tokens_per_s": tokens_per_s,
                    }
                    peak = peak_memory(self.device)  # this rank's, since the process began
                    if peak is not None:
                        record["peak_memory_gb"] = peak / 1e9
                    mfu = self._mfu(tokens_per_s)
                    post = {"loss": f"{loss_val:.4f}", "lr": f"{record['lr']:.2e}"}
                    post["tok/s"] = f"{tokens_per_s:,.0f}"
                    if mfu is not None:
                        record["mfu"] = mfu
                        post["mfu"] = f"{100 * mfu:.1f}%"
                    self._log(record)
                    bar.update(steps_since, **post)
                    t_last, steps_since = time.perf_counter(), 0
        finally:
            bar.close()
            if self.logger is not None:
                self.logger.close()
        plot = None
        if self.is_main and cfg.plot:
            plot = self.plot()
        return {
            "step": self.step,
            "train_loss": next((r["loss"] for r in reversed(self.history) if "loss" in r), None),
            "val_loss": next(
                (r["val_loss"] for r in reversed(self.history) if "val_loss" in r), None
            ),
            "best_val_loss": self.best_val_loss,
            "tokens_per_s": tokens_per_s,
            "run_dir": str(self.run_dir),
            "checkpoint": str(self.checkpoint_path("latest")),
            "plot": str(plot) if plot else None,
        }

    def plot(self) -> Path:
        """Write ``loss.png`` (train/val loss and lr against step) from metrics.jsonl."""
        return plot_metrics(self.run_dir / "metrics.jsonl", self.run_dir / "loss.png")


@functools.cache
def _compiled_lm_loss():
    """``lm_loss`` compiled, for a compiled model: the float32 upcast, softmax and
    gather fuse instead of writing (B, T, vocab) float32 copies (the loss used to be
    part of the compiled forward)."""
    return torch.compile(lm_loss)


__all__ = ["IGNORE_INDEX", "Trainer"]
