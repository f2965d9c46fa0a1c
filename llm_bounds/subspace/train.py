"""Training z: AdamW, warm-up + cosine learning rate, gradient accumulation and clipping.

The loss is the mean next-token cross-entropy in **nats per token** (natural log), computed in
fp32: on the CPU everything runs in fp32; on a GPU the model runs under bf16 autocast while theta
and the loss stay fp32.

Batches are stateless: micro-batch ``a`` of step ``s`` is ``batch_size`` random windows of
``seq_len + 1`` tokens whose start positions come from ``numpy.random.default_rng([seed, s, a])``.
So the data position is just the step number, and a run resumed from a checkpoint sees exactly
the batches an uninterrupted run would. Checkpoints (z, AdamW state, RNG states, next step) are
written atomically (:func:`llm_bounds.core.files.write_atomic`) and read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from llm_bounds.core import distributed
from llm_bounds.core.errors import RunError, require
from llm_bounds.core.files import write_atomic
from llm_bounds.core.progress import progress_bar

CHECKPOINT_NAME = "checkpoint.pt"


class TrainingDiverged(RunError):
    """The loss or z stopped being finite: the learning rate is too large for this model."""

    def __init__(self, step: int, loss: float, lr: float):
        self.step, self.loss, self.lr = step, loss, lr
        super().__init__(f"training diverged at step {step} (loss {loss:.4g} nats per token, z no longer finite "
                         f"or the loss infinite) with a peak learning rate of {lr:g}; rerun with a smaller --lr")


@dataclass
class TrainConfig:
    """Optimisation settings for z. ``lr`` is the peak AdamW learning rate; ``warmup_steps`` rise
    linearly from 0, then a cosine decays to ``min_lr_ratio * lr`` at ``steps``. ``batch_size`` and
    ``seq_len`` are per micro-batch (sequences, tokens); one step = ``grad_accum`` micro-batches.
    ``grad_clip`` is a max L2 norm of the z gradient (0: off). ``checkpoint_every`` in steps (0: only
    at the end). ``device``: "cpu", "cuda", or "auto" (cuda if available). ``prefix_id``: a token put
    before every window (:func:`with_prefix`), or None."""

    steps: int = 1000
    batch_size: int = 8
    seq_len: int = 256
    lr: float = 2e-2
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_accum: int = 1
    grad_clip: float = 1.0
    checkpoint_every: int = 0
    seed: int = 0
    device: str = "auto"
    prefix_id: int | None = None

    def validate(self) -> None:
        """Raise BoundInputError naming the bad field and the fix."""
        require(int(self.steps) >= 1, f"steps must be >= 1, got {self.steps!r}")
        require(int(self.batch_size) >= 1, f"batch_size must be >= 1, got {self.batch_size!r}")
        require(int(self.seq_len) >= 1, f"seq_len must be >= 1 tokens, got {self.seq_len!r}")
        require(math.isfinite(self.lr) and self.lr > 0, f"lr must be > 0, got {self.lr!r}; try 2e-2")
        require(0 <= int(self.warmup_steps), f"warmup_steps must be >= 0, got {self.warmup_steps!r}")
        require(0.0 <= self.min_lr_ratio <= 1.0, f"min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio!r}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay!r}")
        require(int(self.grad_accum) >= 1, f"grad_accum must be >= 1, got {self.grad_accum!r}")
        require(self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip!r}")
        require(int(self.checkpoint_every) >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every!r}")
        require(self.device in ("auto", "cpu") or self.device.startswith("cuda"),
                f"device must be 'auto', 'cpu' or 'cuda[:i]', got {self.device!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available else cpu; otherwise the named device (cpu, cuda, cuda:N)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    require(name == "cpu" or name.startswith("cuda"), f"unknown device {name!r}; use cpu, cuda or auto")
    require(name == "cpu" or torch.cuda.is_available(), f"device {name!r} is not available here; pass --device cpu")
    return torch.device(name)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for 0-based ``step``: linear warm-up to ``lr``, then cosine to ``min_lr_ratio*lr``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.min_lr_ratio * cfg.lr
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def sample_batch(tokens: np.ndarray, step: int, micro: int, cfg: TrainConfig) -> torch.Tensor:
    """Token windows [batch_size, seq_len + 1] (int64) for micro-batch ``micro`` of ``step``.

    A pure function of (tokens, seed, step, micro): this is what makes resuming exact.
    """
    rng = np.random.default_rng([int(cfg.seed), int(step), int(micro)])
    starts = rng.integers(0, len(tokens) - cfg.seq_len, size=cfg.batch_size)
    idx = starts[:, None] + np.arange(cfg.seq_len + 1)[None, :]
    return torch.from_numpy(np.asarray(tokens[idx], dtype=np.int64))


def with_prefix(inputs: torch.Tensor, prefix_id: int | None) -> torch.Tensor:
    """``inputs`` [B, T] with the token ``prefix_id`` put before every row ([B, T + 1]), or unchanged
    for None. A pretrained model that always saw a beginning-of-sequence token first (Gemma)
    predicts far worse without one; the prefix is context only, never a target."""
    if prefix_id is None:
        return inputs
    return torch.cat([torch.full((inputs.shape[0], 1), int(prefix_id), dtype=inputs.dtype, device=inputs.device),
                      inputs], dim=1)


def next_token_loss(model: nn.Module, batch: torch.Tensor, device: torch.device,
                    prefix_id: int | None = None) -> torch.Tensor:
    """Mean cross-entropy in nats per token of predicting batch[:, 1:] from batch[:, :-1] (after the
    optional ``prefix_id`` token, :func:`with_prefix`), in fp32."""
    batch = batch.to(device, non_blocking=True)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(with_prefix(batch[:, :-1], prefix_id))
    if prefix_id is not None:
        logits = logits[:, 1:]
    return nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def _rng_state() -> dict:
    state = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch_cpu"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])


def save_checkpoint(path: Path, model, optimizer, next_step: int, cfg: TrainConfig, history: dict) -> None:
    """Atomically write {z, optimizer, rng, next_step, configs, history} to ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot create {path.parent} ({e.strerror}); free some space or make the folder writable, "
                       "then run the same command again") from None
    state = {
        "z": model.z.detach().cpu(),
        "optimizer": optimizer.state_dict(),
        "rng": _rng_state(),
        "next_step": int(next_step),          # the data position: batches are a function of the step
        "train_config": cfg.to_dict(),
        "model_config": model.config.to_dict() if hasattr(model.config, "to_dict") else {},
        "history": history,
    }
    buffer = io.BytesIO()  # serialised first, so that a full disk surfaces as an OSError in write_atomic
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` without unpickling arbitrary objects."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def train_sublora(model: nn.Module, tokens, config: TrainConfig, checkpoint_dir: Path | None = None,
                  resume: bool = False, progress: bool = True, stop_after: int | None = None) -> dict:
    """Train ``model.z`` on the 1-D token stream ``tokens`` and return a summary.

    Returns ``{"steps", "final_loss_nats" (mean over the last step's micro-batches, nats/token),
    "losses_nats" (one per step), "tokens_per_s", "seconds", "tokens_seen", "device"}``.
    With ``resume=True`` and a checkpoint in ``checkpoint_dir``, continues from it and ends with
    exactly the z an uninterrupted run gives. ``stop_after`` (steps) ends the run early after
    writing a checkpoint, as an interruption would (for tests and time-limited jobs).
    """
    config.validate()
    device = resolve_device(config.device)
    # Dropout draws from torch's global RNG: run on a private copy of it, seeded from config.seed
    # (or restored from the checkpoint), so the result depends on nothing outside the arguments.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(config.seed))
        return _train(model, tokens, config, device, checkpoint_dir, resume, progress, stop_after)


def _train(model, tokens, config, device, checkpoint_dir, resume, progress, stop_after) -> dict:
    """The body of :func:`train_sublora`, run inside a forked RNG."""
    tokens = np.asarray(tokens)
    require(tokens.ndim == 1, f"tokens must be a 1-D stream of token ids, got shape {tokens.shape}")
    require(len(tokens) > config.seq_len + 1,
            f"only {len(tokens)} training tokens for windows of {config.seq_len + 1}; lower seq_len or add data")
    require(not resume or checkpoint_dir is not None, "resume=True needs checkpoint_dir; pass the run's directory")
    model.to(device)
    optimizer = torch.optim.AdamW([model.z], lr=config.lr, betas=tuple(config.betas),
                                  weight_decay=config.weight_decay)
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    start, history = 0, {"losses_nats": []}
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        saved, now = state["train_config"], config.to_dict()
        changed = sorted(k for k in now if k not in ("device", "checkpoint_every") and saved.get(k) != now[k])
        require(not changed, f"checkpoint {ckpt_path} was written with different {changed}; "
                             f"resume with the same TrainConfig or use a new checkpoint_dir")
        if hasattr(model.config, "to_dict"):
            require(state["model_config"] == model.config.to_dict(),
                    f"checkpoint {ckpt_path} belongs to a different SubLoRAConfig; rebuild that model "
                    f"or use a new checkpoint_dir")
        model.set_z(state["z"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        start, history = int(state["next_step"]), state["history"]

    tokens_per_step = config.batch_size * config.seq_len * config.grad_accum
    bar = None
    if progress and distributed.is_main():
        bar = progress_bar(total=config.steps, initial=start, unit="step", dynamic_ncols=True)
    model.train()
    t0, step = time.perf_counter(), start
    end = config.steps if stop_after is None else min(config.steps, int(stop_after))
    try:
        for step in range(start, end):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config)
            total = torch.zeros((), device=device)
            for micro in range(config.grad_accum):
                # Every rank draws the same global batch and trains on its own rows (llm_bounds.core.distributed).
                batch = distributed.local_rows(sample_batch(tokens, step, micro, config))
                loss = next_token_loss(model, batch, device, config.prefix_id)
                (loss / config.grad_accum).backward()
                total += loss.detach()
            distributed.average_gradient(model.z)
            total = distributed.mean_over_ranks(total).item() if distributed.world_size() > 1 else total.item()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_([model.z], config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if not (math.isfinite(total) and bool(torch.isfinite(model.z).all())):
                raise TrainingDiverged(step, total / config.grad_accum, config.lr)
            history["losses_nats"].append(total / config.grad_accum)
            done = step + 1
            if bar is not None:
                rate = (done - start) * tokens_per_step / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{history['losses_nats'][-1]:.4f}", tok_s=f"{rate:,.0f}", refresh=False)
                bar.update(1)
            if ckpt_path is not None and config.checkpoint_every and done % config.checkpoint_every == 0:
                if distributed.is_main():
                    save_checkpoint(ckpt_path, model, optimizer, done, config, history)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    done = max(end, start)
    if ckpt_path is not None and distributed.is_main():
        save_checkpoint(ckpt_path, model, optimizer, done, config, history)
    distributed.barrier()
    model.eval()
    ran = max(0, done - start)
    return {
        "steps": done,
        "final_loss_nats": history["losses_nats"][-1] if history["losses_nats"] else float("nan"),
        "losses_nats": list(history["losses_nats"]),
        "tokens_per_s": ran * tokens_per_step / seconds if seconds > 0 and ran else 0.0,
        "seconds": seconds,
        "tokens_seen": done * tokens_per_step,
        "device": str(device),
    }
