"""Rotary position embedding (Su et al., arXiv 2104.09864), rotate-half form."""

from __future__ import annotations

import torch


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables of shape (T, head_dim) for integer ``positions`` (T,)."""
    half = head_dim // 2
    inv_freq = 1.0 / (
        theta ** (torch.arange(0, half, device=positions.device, dtype=torch.float64) / half)
    )
    ang = positions.to(torch.float64)[:, None] * inv_freq[None, :]  # (T, half)
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().to(dtype), ang.sin().to(dtype)


def apply_rope(x_BHTd: torch.Tensor, cos_Td: torch.Tensor, sin_Td: torch.Tensor) -> torch.Tensor:
    half = x_BHTd.shape[-1] // 2
    x1, x2 = x_BHTd[..., :half], x_BHTd[..., half:]
    rotated = torch.cat([-x2, x1], dim=-1)
    return x_BHTd * cos_Td + rotated * sin_Td
