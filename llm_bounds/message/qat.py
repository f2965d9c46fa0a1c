"""Quantization-aware fine-tuning: train z and the codebook through the hard quantizer.

The forward pass uses the quantized vector exactly as the message will carry it (each coordinate at
its nearest level of the float16-rounded codebook); the backward pass is straight-through: the
gradient reaching a quantized coordinate goes to that coordinate of z unchanged and is summed into
the level it was assigned to. The loss is the caller's callback, so this knows nothing about models.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from llm_bounds.core.errors import RunError, require
from llm_bounds.core.progress import progress_bar
from llm_bounds.message.quantize import Quantized, assign_nearest, to_float16_codebook


def straight_through_quantize(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Nearest-level quantization of ``z`` (ties → lower level) with straight-through gradients.

    Forward: each entry of z becomes its nearest level of ``codebook`` rounded to float16.
    Backward: ∂/∂z is the identity; ∂/∂codebook[k] sums the upstream gradient over entries at k.
    """
    levels = torch.sort(codebook).values
    levels = levels + (levels.to(torch.float16).to(levels.dtype) - levels).detach()
    mids = (levels[1:] + levels[:-1]).detach() / 2
    idx = torch.bucketize(z.detach(), mids)          # mids[i-1] < z <= mids[i]: ties go down
    return levels[idx] + (z - z.detach())


def qat_finetune(z0, quantized: Quantized, loss_fn: Callable[[torch.Tensor], torch.Tensor],
                 steps: int, lr: float, seed: int = 0, train_codebook: bool = True,
                 history: list | None = None, progress: bool = False) -> Quantized:
    """Fine-tune z (from ``z0``) and the codebook (from ``quantized``) for ``steps`` Adam steps.

    The learning rate decays from ``lr`` to 0 along a cosine, so the last steps settle z next to
    its levels instead of leaving it wherever the last noisy gradient put it.

    ``loss_fn`` takes the straight-through quantized z (float32 tensor of shape (d,), on z0's device)
    and returns a scalar loss (any unit; it is only minimised). The torch RNG is seeded with ``seed``
    inside a forked RNG state, so a stochastic loss is reproducible and global state is untouched.
    Appends each step's loss to ``history`` if given; ``progress`` shows a bar with an ETA. Returns
    the hard quantization of the final z: codebook rounded to float16 and sorted, each coordinate at
    its nearest level. A loss that stops being finite raises :class:`llm_bounds.core.errors.RunError`.
    """
    require(isinstance(quantized, Quantized), f"quantized must be a llm_bounds.message.quantize.Quantized, got {type(quantized).__name__}")
    require(float(steps) == int(steps) and int(steps) >= 0, f"steps must be a non-negative integer, got {steps!r}")
    require(isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0, f"lr must be a positive number, got {lr!r}")
    device = z0.device if isinstance(z0, torch.Tensor) else torch.device("cpu")
    z_init = z0.detach().reshape(-1) if isinstance(z0, torch.Tensor) else torch.as_tensor(np.asarray(z0).reshape(-1))
    require(z_init.numel() == quantized.d, f"z0 has {z_init.numel()} entries but the quantization has d = {quantized.d}")
    z = z_init.to(device=device, dtype=torch.float32).clone().requires_grad_(True)
    codebook = torch.tensor(quantized.codebook.astype(np.float32), device=device, requires_grad=train_codebook)
    opt = torch.optim.Adam([z, codebook] if train_codebook else [z], lr=float(lr))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(int(steps), 1), eta_min=0.0)
    devices = [device.index if device.index is not None else 0] if device.type == "cuda" else []
    bar = progress_bar(total=int(steps), desc="quantization-aware fine-tuning", unit="step") if progress else None
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        try:
            for step in range(int(steps)):
                loss = loss_fn(straight_through_quantize(z, codebook))
                require(loss.dim() == 0, f"loss_fn must return a scalar tensor, got shape {tuple(loss.shape)}")
                if not bool(torch.isfinite(loss)):
                    raise RunError(f"quantization-aware fine-tuning diverged at step {step} (loss {float(loss):.4g}) "
                                   f"with a learning rate of {lr:g}; lower the QAT learning rate and run into a new --out")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
                if history is not None:
                    history.append(float(loss.detach()))
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    c16 = to_float16_codebook(codebook.detach().cpu().numpy())
    return Quantized(codebook=c16, indices=assign_nearest(z.detach().cpu().numpy(), c16))
