"""Random projections P: R^d -> R^D for the subspace parameterization theta = theta0 + P z.

Every projector is fixed by (D, d, seed): all randomness is drawn on the CPU from
``torch.Generator().manual_seed(...)`` and then moved to the device, so P is the same everywhere
and costs no bits. Each one provides ``forward(z) -> P z`` ([D]) and ``transpose(y) -> P^T y``
([d]); autograd uses ``transpose`` for the backward pass (see :class:`_Project`).

Scale: each projector is designed so that E||P z||^2 = ||z||^2 (columns of unit expected norm),
so a step in z moves theta by about as much as it moves z.

============  =========================================================  ============
name          structure                                                  cost of P z
============  =========================================================  ============
``dense``     i.i.d. N(0, 1/D), regenerated in row chunks (small D*d)    O(D d)
``sparse``    very sparse (Li, Hastie & Church 2006): ~sqrt(D) nonzeros  O(d sqrt(D))
              +-1/sqrt(k) per column
``kron``      Q1 (x) Q2, QR-orthonormal Gaussian factors (Lotfi et al.)  O(D sqrt(d))
``fastfood``  stacked Fastfood blocks H G Pi H B / n (Le et al. 2013)    O(D log d)
============  =========================================================  ============

The default is ``kron``: it is the paper's choice (so results compare with it), its columns are
exactly orthonormal when D factors as a1*a2 (so ||P z|| = ||z||), it needs only a1*b1 + a2*b2
random numbers, and it is fast (about 4 ms forward+backward at D = 351,744, d = 50,000 on 2 CPU
cores; ``fastfood`` takes about 6.5 ms there). ``fastfood`` mixes every z coordinate into every
output block like a Gaussian matrix, at O(D log d); it is the choice when a less structured
subspace is wanted (the Kronecker subspace only reaches theta's whose a1 x a2 reshaping has rank
<= min(b1, b2)).

No dead coordinates: every theta entry and every z coordinate is reached for every (D, d); the
leftover rule of each structured projector says how (zero-padding of z, truncation of outputs).
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from llm_bounds.core.errors import require
from llm_bounds.core.seeds import cpu_generator

PROJECTORS = ("kron", "fastfood", "sparse", "dense")
DEFAULT_PROJECTOR = "kron"
DENSE_MAX_ENTRIES = 200_000_000   # dense P is regenerated every call: beyond this, use kron/fastfood
DENSE_CACHE_ENTRIES = 1 << 24     # up to this many entries the dense P is kept in memory


def check_dims(D: int, d: int) -> None:
    """Validate 1 <= d <= D (both counts of numbers), with the fix in the message."""
    require(float(d) == int(d) and int(d) >= 1, f"intrinsic dimension d must be >= 1, got {d!r}; pass e.g. d=1000")
    require(float(D) == int(D) and int(D) >= 1, f"the projected dimension D must be >= 1, got {D!r}")
    require(int(d) <= int(D),
            f"intrinsic dimension d={d} exceeds the number of LoRA parameters D={D}; "
            f"pass d <= {D} (or add LoRA targets / raise the rank)")


class _Project(torch.autograd.Function):
    """y = P z with the backward pass grad_z = P^T grad_y, using the projector's own transpose."""

    @staticmethod
    def forward(ctx, z, projector):
        ctx.projector = projector
        return projector.apply_P(z)

    @staticmethod
    def backward(ctx, grad_out):
        return ctx.projector.apply_PT(grad_out), None


class Projector(nn.Module):
    """Base class: a fixed linear map R^d -> R^D. Subclasses define ``apply_P`` and ``apply_PT``."""

    def __init__(self, D: int, d: int, seed: int):
        super().__init__()
        check_dims(D, d)
        self.D, self.d, self.seed = int(D), int(d), int(seed)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """P z for z of shape [d] (float); differentiable in z. Returns shape [D]."""
        require(z.shape == (self.d,), f"z must have shape ({self.d},), got {tuple(z.shape)}")
        return _Project.apply(z, self)

    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        """P^T y for y of shape [D]. Returns shape [d]."""
        require(y.shape == (self.D,), f"y must have shape ({self.D},), got {tuple(y.shape)}")
        return self.apply_PT(y)

    def apply_P(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply_PT(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"D={self.D}, d={self.d}, seed={self.seed}"


class DenseGaussianProjector(Projector):
    """P_ij ~ N(0, 1/D) i.i.d., so E||P z||^2 = ||z||^2.

    Row chunk c is drawn from its own generator (derived from the seed and c), so any chunk can be
    regenerated alone: P is never held whole unless it has at most DENSE_CACHE_ENTRIES entries.
    Only for small D*d (<= DENSE_MAX_ENTRIES); every call costs O(D d).
    """

    def __init__(self, D: int, d: int, seed: int = 0, chunk_entries: int = 1 << 22):
        super().__init__(D, d, seed)
        require(self.D * self.d <= DENSE_MAX_ENTRIES,
                f"dense projector with D*d={self.D * self.d:,} entries is too slow; "
                f"use projector='kron' or 'fastfood'")
        self.rows_per_chunk = max(1, chunk_entries // self.d)
        self.register_buffer("cached", self._materialize() if self.D * self.d <= DENSE_CACHE_ENTRIES
                             else torch.empty(0), persistent=False)

    def _chunk(self, c: int) -> torch.Tensor:
        r0 = c * self.rows_per_chunk
        rows = min(self.rows_per_chunk, self.D - r0)
        g = cpu_generator(self.seed, "dense", c)
        return torch.randn(rows, self.d, generator=g, dtype=torch.float32) / math.sqrt(self.D)

    def _chunks(self):
        return range(math.ceil(self.D / self.rows_per_chunk))

    def _materialize(self) -> torch.Tensor:
        return torch.cat([self._chunk(c) for c in self._chunks()])

    def apply_P(self, z):
        if self.cached.numel():
            return self.cached @ z
        return torch.cat([self._chunk(c).to(z.device) @ z for c in self._chunks()])

    def apply_PT(self, y):
        if self.cached.numel():
            return self.cached.T @ y
        out = torch.zeros(self.d, dtype=y.dtype, device=y.device)
        for c in self._chunks():
            r0 = c * self.rows_per_chunk
            block = self._chunk(c).to(y.device)
            out += block.T @ y[r0:r0 + block.shape[0]]
        return out


class SparseProjector(Projector):
    """Very sparse random projection (after Li, Hastie & Church 2006).

    Each column has exactly k = max(ceil(sqrt(D)), ceil(D/d)) nonzeros, at k distinct rows, of
    value +-1/sqrt(k) with independent random signs: every column has unit norm and
    E||P z||^2 = ||z||^2. The row indices of all columns, read in order, are a concatenation of
    random permutations of range(D): since k*d >= D the first permutation is complete, so every
    theta entry is reached (no dead rows), and every column has k >= 1 entries (no dead z
    coordinate). Where a column straddles two permutations, the rows it already holds are moved
    to the end of the next permutation, so its rows stay distinct (a repeated row with opposite
    signs would cancel). Stored as two CSR matrices (P and P^T); memory O(d sqrt(D)).
    """

    def __init__(self, D: int, d: int, seed: int = 0):
        super().__init__(D, d, seed)
        k = min(self.D, max(math.ceil(math.sqrt(self.D)), math.ceil(self.D / self.d)))
        nnz = k * self.d
        g = cpu_generator(self.seed, "sparse")
        rows = torch.empty(math.ceil(nnz / self.D) * self.D, dtype=torch.int64)
        for start in range(0, len(rows), self.D):
            perm = torch.randperm(self.D, generator=g)
            held = rows[start - start % k: start]          # rows of the column that straddles `start`
            if len(held):
                clash = torch.isin(perm, held)
                perm = torch.cat([perm[~clash], perm[clash]])
            rows[start:start + self.D] = perm
        rows = rows[:nnz]
        cols = torch.arange(self.d).repeat_interleave(k)
        signs = torch.randint(0, 2, (nnz,), generator=g, dtype=torch.int64) * 2 - 1
        vals = signs.to(torch.float32) / math.sqrt(k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # "sparse CSR support is in beta"
            P = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (self.D, self.d),
                                        check_invariants=False).coalesce()
            self.register_buffer("P", P.to_sparse_csr(), persistent=False)
            self.register_buffer("PT", P.t().coalesce().to_sparse_csr(), persistent=False)
        self.k = k

    def apply_P(self, z):
        return (self.P @ z.unsqueeze(1)).squeeze(1)

    def apply_PT(self, y):
        return (self.PT @ y.unsqueeze(1)).squeeze(1)


def _orthonormal(rows: int, cols: int, g: torch.Generator) -> torch.Tensor:
    """Q (rows x cols, rows >= cols) with orthonormal columns: QR of a Gaussian matrix in float64,
    with column signs fixed by diag(R) > 0 so that Q is unique (Haar-distributed)."""
    q, r = torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r)).masked_fill(torch.diagonal(r) == 0, 1.0)).to(torch.float32)


def kron_factors(D: int, d: int) -> tuple[int, int, int, int]:
    """The factor shapes (a1, a2, b1, b2) of the Kronecker projector.

    a1 = ceil(sqrt(D)), a2 = ceil(D/a1) (so a1*a2 >= D with fewer than a1 extra rows), and likewise
    b1, b2 for d. Since n -> ceil(n/ceil(sqrt(n))) is non-decreasing, d <= D gives b1 <= a1 and
    b2 <= a2, so both factors can have orthonormal columns.
    """
    a1 = math.isqrt(D - 1) + 1 if D > 1 else 1
    a2 = math.ceil(D / a1)
    b1 = math.isqrt(d - 1) + 1 if d > 1 else 1
    b2 = math.ceil(d / b1)
    return a1, a2, b1, b2


class KroneckerProjector(Projector):
    """P = first D rows and first d columns of Q1 (x) Q2, with Q1 (a1 x b1) and Q2 (a2 x b2) having
    orthonormal columns (QR of Gaussian matrices): P z = vec(Q1 Z Q2^T)[:D], Z = reshape(pad(z)).

    Leftover rule: z is zero-padded from d to b1*b2 (< b1 extra slots, which are not coordinates of
    z), and the last a1*a2 - D (< a1) outputs are dropped. No coordinate is dead: the d used
    columns are columns of an orthonormal matrix restricted to the first D rows, and every row is a
    product of two Gaussian-derived rows, nonzero with probability 1, for every (D, d), perfect
    squares included. P^T P = I_d exactly when a1*a2 = D; otherwise P is a contraction whose
    expected energy loss is (a1*a2 - D)/(a1*a2) < 1/a2.
    """

    def __init__(self, D: int, d: int, seed: int = 0):
        super().__init__(D, d, seed)
        self.a1, self.a2, self.b1, self.b2 = kron_factors(self.D, self.d)
        require(self.b1 <= self.a1 and self.b2 <= self.a2,
                f"internal: Kronecker factors {(self.a1, self.a2, self.b1, self.b2)} do not fit; report this")
        g = cpu_generator(self.seed, "kron")
        self.register_buffer("Q1", _orthonormal(self.a1, self.b1, g), persistent=False)
        self.register_buffer("Q2", _orthonormal(self.a2, self.b2, g), persistent=False)

    def apply_P(self, z):
        Z = nn.functional.pad(z, (0, self.b1 * self.b2 - self.d)).view(self.b1, self.b2)
        return (self.Q1 @ Z @ self.Q2.T).reshape(-1)[: self.D]

    def apply_PT(self, y):
        Y = nn.functional.pad(y, (0, self.a1 * self.a2 - self.D)).view(self.a1, self.a2)
        return (self.Q1.T @ Y @ self.Q2).reshape(-1)[: self.d]


@torch.no_grad()
def fwht(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised fast Walsh-Hadamard transform along the last axis (length a power of 2).

    Sylvester ordering, H = H^T, H H = n I. Vectorised: log2(n) butterfly passes over the whole
    batch, writing into two ping-pong buffers (about 7x faster than stacking a new tensor per
    pass). Not differentiable itself: FastfoodProjector supplies the transpose for autograd.
    """
    n = x.shape[-1]
    require(n > 0 and n & (n - 1) == 0, f"fwht needs a power-of-2 length, got {n}")
    src = x.reshape(-1, n)
    bufs = (torch.empty_like(src), torch.empty_like(src))
    h, i = 1, 0
    while h < n:
        a = src.view(-1, n // (2 * h), 2, h)
        out = bufs[i].view(-1, n // (2 * h), 2, h)
        torch.add(a[:, :, 0], a[:, :, 1], out=out[:, :, 0])
        torch.sub(a[:, :, 0], a[:, :, 1], out=out[:, :, 1])
        src, i, h = bufs[i], 1 - i, h * 2
    return (src if n > 1 else src.clone()).view(x.shape)


class FastfoodProjector(Projector):
    """Stacked Fastfood blocks (Le, Sarlos & Smola 2013), scaled so that E||P z||^2 = ||z||^2.

    Let n = 2^ceil(log2 d) and m = ceil(D/n). With B a +-1 diagonal, and for each block k a
    random permutation Pi_k and a Gaussian diagonal G_k,

        P z = (1 / (n sqrt(m))) [H G_k Pi_k H B pad(z)]_{k=1..m}, truncated to the first D entries.

    H B / sqrt(n) is orthogonal; each block H G_k Pi_k (.) / sqrt(n) has E[block^T block] = I, so
    stacking m blocks and dividing by sqrt(m) gives E||P z||^2 = ||z||^2 (before the truncation of
    fewer than n outputs). Gaussian G_k (not +-1) keeps every output entry nonzero with probability
    1, even for d = 1, where +-1 signs would zero out whole rows. Cost O(m n log n) = O(D log d).

    The reference fastfood is off by a factor of about 100 in scale; here the scale is tested.
    """

    def __init__(self, D: int, d: int, seed: int = 0):
        super().__init__(D, d, seed)
        self.n = 1 << max(0, (self.d - 1).bit_length())
        self.m = math.ceil(self.D / self.n)
        g = cpu_generator(self.seed, "fastfood")
        B = (torch.randint(0, 2, (self.n,), generator=g) * 2 - 1).to(torch.float32)
        perm = torch.stack([torch.randperm(self.n, generator=g) for _ in range(self.m)])
        G = torch.randn(self.m, self.n, generator=g, dtype=torch.float32)
        self.register_buffer("B", B, persistent=False)
        self.register_buffer("perm", perm, persistent=False)
        self.register_buffer("inv_perm", torch.argsort(perm, dim=1), persistent=False)
        self.register_buffer("G", G, persistent=False)
        self.scale = 1.0 / (self.n * math.sqrt(self.m))

    def apply_P(self, z):
        u = fwht(nn.functional.pad(z, (0, self.n - self.d)) * self.B)      # [n], shared by all blocks
        v = u[self.perm] * self.G                                          # [m, n]
        return (fwht(v) * self.scale).reshape(-1)[: self.D]

    def apply_PT(self, y):
        Y = nn.functional.pad(y, (0, self.m * self.n - self.D)).view(self.m, self.n)
        v = fwht(Y) * self.G                                               # H then G_k
        u = torch.gather(v, 1, self.inv_perm).sum(0)                       # Pi_k^T, summed over blocks
        return (fwht(u) * self.B)[: self.d] * self.scale


_CLASSES = {"kron": KroneckerProjector, "fastfood": FastfoodProjector,
            "sparse": SparseProjector, "dense": DenseGaussianProjector}


def make_projector(name: str, D: int, d: int, seed: int = 0) -> Projector:
    """The projector called ``name`` (one of :data:`PROJECTORS`) from R^d to R^D, seeded by ``seed``."""
    require(name in _CLASSES, f"unknown projector {name!r}; choose one of {', '.join(PROJECTORS)}")
    return _CLASSES[name](D, d, seed)
