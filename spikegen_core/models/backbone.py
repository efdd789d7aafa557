"""The transformer over all latent tokens (no masking): pre-norm blocks with 2-D rotary positions.

Rotary embeddings encode relative (y, x) offsets, so the same weights run on any grid size (64×64 training
crops and 250×400 recordings alike).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rope_2d(h: int, w: int, head_dim: int, device: torch.device, base: float = 100.0) -> torch.Tensor:
    """Angles (h·w, head_dim/2) for axial rotary embedding: half the pairs rotate with y, half with x."""
    quarter = head_dim // 4
    freqs = base ** (-torch.arange(quarter, device=device, dtype=torch.float32) / max(quarter, 1))
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    ang_y = ys.reshape(-1, 1) * freqs
    ang_x = xs.reshape(-1, 1) * freqs
    return torch.cat([ang_y, ang_x], dim=1)


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive pairs of ``x`` (B, heads, N, head_dim) by ``angles`` (N, head_dim/2)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads or (dim // heads) % 4:
            raise ValueError(f"width {dim} must split into {heads} heads of a size divisible by 4")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, angles), apply_rope(k, angles)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), angles)
        return x + self.mlp(self.norm2(x))


class TokenTransformer(nn.Module):
    """Tokens (B, N, D) on an h×w grid → one condition vector per token (B, N, D)."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        angles = rope_2d(grid[0], grid[1], tokens.shape[-1] // self.heads, tokens.device)
        x = tokens
        for blk in self.blocks:
            x = blk(x, angles)
        return self.norm(x)
