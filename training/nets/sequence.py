"""Long-range sequence blocks on a volume's tokens: a Transformer encoder layer and a selective
state-space (Mamba-2 style) block, both in plain PyTorch that exports to ONNX with dynamic lengths.

Why not ``nn.TransformerEncoderLayer``: its ``nn.MultiheadAttention`` bakes the sequence length and
batch size into reshapes when traced for ONNX, so an export runs only at the traced size.
``TransformerLayer`` is the same pre-norm layer (LayerNorm, multi-head self-attention, GELU MLP)
with reshapes that stay dynamic.

The SSM block: input-dependent step ``dt``, B and C (selective), a causal depthwise conv1d, a
per-head diagonal decay ``exp(dt * A)`` (A < 0) and the linear recurrence
``h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t, y_t = C_t h_t + D x_t``, evaluated in the chunked
parallel form of Mamba-2 (SSD): quadratic inside chunks, a decayed state passed between chunks,
with log-space cumulative sums masked by ``-inf`` before ``exp`` (no overflow). Chunks are slabs of
the token grid, so no padding and no Python-side lengths enter the graph.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class TransformerLayer(nn.Module):
    def __init__(self, dim: int, heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, L, dim); padding_mask (B, L) True where a token is padding."""
        b, n = x.shape[0], x.shape[1]
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        if padding_mask is not None:
            attn = attn.masked_fill(padding_mask[:, None, None, :], float("-inf"))
        out = (self.drop(attn.softmax(dim=-1)) @ v).transpose(1, 2).reshape(b, n, -1)
        x = x + self.drop(self.proj(out))
        return x + self.drop(self.mlp(self.norm2(x)))


def _positions(x: torch.Tensor) -> torch.Tensor:
    """1, 2, ..., n along the last axis, built from the data so it stays dynamic in ONNX."""
    return torch.cumsum(torch.ones_like(x), dim=-1)


def _segsum_exp(rows: torch.Tensor, cols: torch.Tensor, strict: bool = False) -> torch.Tensor:
    """exp(rows[t] - cols[s]) for s <= t (s < t if strict), else 0; shape (..., T, T)."""
    pos = _positions(rows)
    keep = pos[..., :, None] > pos[..., None, :] if strict else pos[..., :, None] >= pos[..., None, :]
    diff = rows[..., :, None] - cols[..., None, :]
    return torch.exp(torch.where(keep, diff, torch.full_like(diff, float("-inf"))))


def ssd_scan(u: torch.Tensor, a: torch.Tensor, bmat: torch.Tensor, cmat: torch.Tensor) -> torch.Tensor:
    """Chunked selective scan. u (b, c, T, h, p) inputs (already x dt), a (b, c, T, h) log decays
    (<= 0), bmat/cmat (b, c, T, n); chunks c in sequence order. Returns y (b, c, T, h, p)."""
    a = a.permute(0, 3, 1, 2)                                   # (b, h, c, T)
    a_cum = torch.cumsum(a, dim=-1)
    cb = torch.einsum("bctn,bcsn->bcts", cmat, bmat)            # (b, c, T, T)
    weights = _segsum_exp(a_cum, a_cum) * cb[:, None]                  # (b, h, c, T, T)
    y_diag = torch.einsum("bhcts,bcshp->bcthp", weights, u)
    # State at each chunk's end, then the state entering each chunk from all earlier ones.
    decay_to_end = torch.exp(a_cum[..., -1:] - a_cum)           # (b, h, c, T)
    states = torch.einsum("bcsn,bcshp->bchpns", bmat, u)
    states = (states * decay_to_end.permute(0, 2, 1, 3)[:, :, :, None, None, :]).sum(-1)  # (b, c, h, p, n)
    totals = torch.cumsum(a_cum[..., -1], dim=-1)               # (b, h, c)
    enter = _segsum_exp(totals - a_cum[..., -1], totals, strict=True)   # end of z -> start of c
    entering = torch.einsum("bhcz,bzhpn->bchpn", enter, states)
    y_off = torch.einsum("bctn,bchpn->bcthp", cmat, entering)
    return y_diag + y_off * torch.exp(a_cum).permute(0, 2, 3, 1)[..., None]


class _SSMCore(nn.Module):
    def __init__(self, dim: int, state: int, expand: int, head_dim: int, conv_kernel: int) -> None:
        super().__init__()
        inner = expand * dim
        self.heads, self.head_dim, self.state = inner // head_dim, head_dim, state
        self.in_proj = nn.Linear(dim, 2 * inner)
        self.conv = nn.Conv1d(inner, inner, conv_kernel, groups=inner)
        self.conv_pad = conv_kernel - 1
        self.x_proj = nn.Linear(inner, self.heads + 2 * state)
        dt = torch.exp(torch.empty(self.heads).uniform_(math.log(1e-3), math.log(1e-1)))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))      # softplus^-1(dt)
        self.a_log = nn.Parameter(torch.log(torch.linspace(1.0, 16.0, self.heads)))
        self.skip = nn.Parameter(torch.ones(self.heads))
        self.out_proj = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (b, c, T, dim), chunks c in sequence order -> (b, c, T, dim)."""
        b, c = x.shape[0], x.shape[1]
        xs, z = self.in_proj(x).chunk(2, dim=-1)
        seq = xs.reshape(b, -1, xs.shape[-1]).transpose(1, 2)              # (b, inner, L)
        seq = F.silu(self.conv(F.pad(seq, (self.conv_pad, 0))))           # causal depthwise conv
        xs = seq.transpose(1, 2).reshape(b, c, -1, seq.shape[1])
        dt_raw, bmat, cmat = self.x_proj(xs).split([self.heads, self.state, self.state], dim=-1)
        dt = F.softplus(dt_raw + self.dt_bias)                             # (b, c, T, h)
        heads = xs.reshape(b, c, xs.shape[2], self.heads, self.head_dim)
        y = ssd_scan(heads * dt[..., None], -torch.exp(self.a_log) * dt, bmat, cmat)
        y = y + heads * self.skip[:, None]
        return self.out_proj(y.flatten(-2) * F.silu(z))


class SSMBlock(nn.Module):
    """Residual selective-SSM block over chunked tokens (b, c, T, dim); bidirectional by default
    (a second core scans the reversed sequence), as vision Mamba variants do."""

    def __init__(self, dim: int, state: int = 8, expand: int = 2, head_dim: int = 8,
                 conv_kernel: int = 4, bidirectional: bool = True) -> None:
        super().__init__()
        if (expand * dim) % head_dim:
            raise ValueError(f"expand*dim={expand * dim} is not divisible by head_dim={head_dim}")
        self.norm = nn.LayerNorm(dim)
        self.forward_core = _SSMCore(dim, state, expand, head_dim, conv_kernel)
        self.backward_core = _SSMCore(dim, state, expand, head_dim, conv_kernel) if bidirectional else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        out = x + self.forward_core(h)
        if self.backward_core is not None:
            out = out + self.backward_core(h.flip(1).flip(2)).flip(1).flip(2)
        return out


def reference_scan(u, a, bmat, cmat) -> torch.Tensor:
    """Sequential recurrence on flat sequences (tests): u (b, L, h, p), a (b, L, h), b/c (b, L, n)."""
    bsz, length, h, p = u.shape
    state = u.new_zeros(bsz, h, p, bmat.shape[-1])
    ys = []
    for t in range(length):
        state = state * torch.exp(a[:, t])[..., None, None] + u[:, t, :, :, None] * bmat[:, t, None, None, :]
        ys.append((state * cmat[:, t, None, None, :]).sum(-1))
    return torch.stack(ys, dim=1)
