"""Sparse products on the user-item graph: fast, and differentiable to any order.

Graph models propagate embeddings with ``A_hat = D^-1/2 A D^-1/2`` where
``A = [[0, R], [R^T, 0]]`` is the bipartite adjacency of the training interactions ``R``:
node ``u`` is user ``u`` and node ``n_users + i`` is item ``i``. Nodes without edges get an
empty row. CDAE multiplies rows of ``R`` (users' item sets) with its encoder.

Why not ``torch.sparse.mm``: on CPU a CSR product is several times faster than a COO one
(:mod:`sgdl_wrap.benchmarks.studies.propagation`), the built-in backward of a sparse product
transposes the matrix at every call, and ``torch.func`` transforms cannot take sparse tensors as
inputs. A :class:`SparseMatrix` therefore keeps its transpose in CSR as well (the same object for a
symmetric matrix such as ``A_hat``), and :func:`sparse_matmul` computes the backward as a product
with it, by calling itself, which makes it differentiable to any order (SGDL differentiates through
a gradient step). A :class:`SparseMatrix` is a plain object, which ``torch.func`` passes through
untouched.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sgdl_wrap.data.interactions import Interactions

__all__ = [
    "EdgeList",
    "NormalizedAdjacency",
    "SparseMatmul",
    "SparseMatrix",
    "sparse_matmul",
    "symmetric_sampled_dot",
    "symmetric_weighted_matmul",
]

_CSRParts = tuple[Tensor, Tensor, Tensor, tuple[int, int]]


def _csr(
    crow_indices: Tensor, col_indices: Tensor, values: Tensor, shape: tuple[int, int]
) -> Tensor:
    # Torch's notices that CSR is in beta and that invariants go unchecked (they hold by
    # construction) say nothing actionable to users of the models.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly")
        return torch.sparse_csr_tensor(
            crow_indices, col_indices, values, shape, check_invariants=False
        )


def _compress(major: Tensor, minor: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """CSR ``[shape]`` of the entries ``(major[k], minor[k]) = values[k]``."""
    order = torch.argsort(major * shape[1] + minor)
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=major.device)
    torch.cumsum(torch.bincount(major, minlength=shape[0]), 0, out=crow[1:])
    return _csr(crow, minor[order], values[order], shape)


def _parts(csr: Tensor) -> _CSRParts:
    return csr.crow_indices(), csr.col_indices(), csr.values(), (csr.shape[0], csr.shape[1])


def _rebuild(parts: _CSRParts, transpose_parts: _CSRParts | None) -> SparseMatrix:
    if transpose_parts is None:
        return SparseMatrix(_csr(*parts))
    return SparseMatrix(_csr(*parts), _csr(*transpose_parts))


class SparseMatrix:
    """A constant sparse matrix ``[M, N]`` for :func:`sparse_matmul`, stored in CSR together
    with its transpose.

    Attributes:
        csr: the matrix, a sparse CSR tensor ``[M, N]``.
        transpose: the transposed :class:`SparseMatrix` ``[N, M]``; ``self`` for a matrix
            built as symmetric.
    """

    __slots__ = ("csr", "transpose")

    def __init__(self, csr: Tensor, transpose_csr: Tensor | None = None) -> None:
        """Wrap ``csr``; without ``transpose_csr`` the matrix is taken to be symmetric (not
        checked: its backward then uses ``A`` for ``A^T``)."""
        self.csr = csr
        self.transpose: SparseMatrix = self
        if transpose_csr is not None:
            self.transpose = SparseMatrix.__new__(SparseMatrix)
            self.transpose.csr = transpose_csr
            self.transpose.transpose = self

    @classmethod
    def symmetric(cls, crow_indices: Tensor, col_indices: Tensor, values: Tensor) -> SparseMatrix:
        """A symmetric ``[N, N]`` matrix from its CSR parts ``[N + 1]``, ``[nnz]``, ``[nnz]``."""
        n = crow_indices.numel() - 1
        return cls(_csr(crow_indices, col_indices, values, (n, n)))

    @classmethod
    def from_coo(
        cls, rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]
    ) -> SparseMatrix:
        """The ``[M, N]`` matrix with entries ``(rows[k], cols[k]) = values[k]``, ``[nnz]``
        each, in any order and without repeated positions."""
        return cls(_compress(rows, cols, values, shape), _compress(cols, rows, values, shape[::-1]))

    @property
    def shape(self) -> tuple[int, int]:
        return self.csr.shape[0], self.csr.shape[1]

    def __reduce__(self) -> tuple[Any, tuple[_CSRParts, _CSRParts | None]]:
        # Sparse tensors cannot be deep-copied; their dense parts can.
        symmetric = self.transpose is self
        return _rebuild, (_parts(self.csr), None if symmetric else _parts(self.transpose.csr))

    def __repr__(self) -> str:
        kind = ", symmetric" if self.transpose is self else ""
        return f"SparseMatrix(shape={self.shape}, nnz={self.csr.values().numel()}{kind})"


def _product(csr: Tensor, x: Tensor) -> Tensor:
    """``csr @ x``. On the CPU ``embedding_bag`` forms the same weighted row sums (row ``r``:
    ``sum_k values[k] * x[cols[k]]`` over row ``r``'s entries) about twice as fast as the
    CSR kernel (``python -m sgdl_wrap.benchmarks.studies.propagation``)."""
    if x.device.type != "cpu":
        return csr @ x
    return F.embedding_bag(
        csr.col_indices(), x, csr.crow_indices(), mode="sum",
        per_sample_weights=csr.values(), include_last_offset=True,
    )


class _EagerSparseMatmul(torch.autograd.Function):
    """:class:`SparseMatmul` for use outside ``torch.func``: defining ``forward`` with a
    ``ctx`` skips the argument binding (``inspect.signature``) that ``apply`` performs for
    ``setup_context`` Functions, which costs as much as a small product."""

    @staticmethod
    def forward(ctx: Any, matrix: SparseMatrix, x: Tensor) -> Tensor:
        ctx.matrix = matrix
        return _product(matrix.csr, x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[None, Tensor]:
        return None, sparse_matmul(ctx.matrix.transpose, grad_output)


class SparseMatmul(torch.autograd.Function):
    """``y = A x`` for a :class:`SparseMatrix` ``A`` ``[M, N]`` and ``x`` ``[N, d]``.

    The backward, ``grad_x = A^T grad_y``, calls :func:`sparse_matmul` again, so the product
    is differentiable to any order. ``A`` gets no gradient. Supports ``torch.func.grad`` /
    ``vmap`` (a batched ``x`` becomes extra columns of one product).
    """

    @staticmethod
    def forward(matrix: SparseMatrix, x: Tensor) -> Tensor:
        return _product(matrix.csr, x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[SparseMatrix, Tensor], output: Tensor) -> None:
        ctx.matrix = inputs[0]

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[None, Tensor]:
        return None, sparse_matmul(ctx.matrix.transpose, grad_output)

    @staticmethod
    def vmap(
        info: Any, in_dims: tuple[None, int | None], matrix: SparseMatrix, x: Tensor
    ) -> tuple[Tensor, int | None]:
        x_dim = in_dims[1]
        if x_dim is None:
            return SparseMatmul.apply(matrix, x), None
        moved = x.movedim(x_dim, -1)
        out = SparseMatmul.apply(matrix, moved.reshape(moved.shape[0], -1))
        return out.reshape(matrix.shape[0], *moved.shape[1:]), moved.dim() - 1


def sparse_matmul(matrix: SparseMatrix, x: Tensor) -> Tensor:
    """``A x`` for ``A`` ``[M, N]`` and ``x`` ``[N, d]`` -> ``[M, d]``.

    Differentiable in ``x`` to any order (also under ``torch.func``), never in ``A``.
    """
    if not isinstance(matrix, SparseMatrix):
        raise TypeError(f"matrix must be a SparseMatrix, got {type(matrix).__name__}")
    if x.dim() != 2 or x.shape[0] != matrix.shape[1]:
        raise ValueError(f"x must have shape [{matrix.shape[1]}, d], got {tuple(x.shape)}")
    if x.dtype != matrix.csr.dtype:
        raise TypeError(f"x has dtype {x.dtype} but the matrix has {matrix.csr.dtype}")
    # Same private test that Function.apply itself uses to route to torch.func.
    if torch._C._are_functorch_transforms_active():
        return SparseMatmul.apply(matrix, x)
    return _EagerSparseMatmul.apply(matrix, x)


class EdgeList(NamedTuple):
    """The stored entries of ``A_hat`` as coordinates, each ``[nnz]``: ``A_hat[rows[k],
    cols[k]] = values[k]``, entry ``k`` belonging to undirected edge ``edge_ids[k]``."""

    rows: Tensor
    cols: Tensor
    values: Tensor
    edge_ids: Tensor


def _entry_dots(pattern: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``[nnz]``: ``<a_r, b_c>`` at each stored entry ``(r, c)`` of the CSR ``pattern`` (its
    values are ignored), as a sampled product with no ``[nnz, d]`` temporary."""
    return torch.sparse.sampled_addmm(pattern, a, b.T, beta=0.0).values()


class _SymmetricWeightedMatmul(torch.autograd.Function):
    """``S x`` for a symmetric CSR ``S`` whose values need gradients (first order only)."""

    @staticmethod
    def forward(ctx: Any, crow: Tensor, col: Tensor, values: Tensor, x: Tensor) -> Tensor:
        csr = _csr(crow, col, values, (x.shape[0], x.shape[0]))
        ctx.save_for_backward(x)
        ctx.csr = csr
        return _product(csr, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor, Tensor]:
        (x,) = ctx.saved_tensors
        # d<G, S x>/dS_rc = <G_r, x_c> at the stored entries only.
        return None, None, _entry_dots(ctx.csr, grad, x), _product(ctx.csr, grad)


def symmetric_weighted_matmul(crow: Tensor, col: Tensor, values: Tensor, x: Tensor) -> Tensor:
    """``S x`` for ``x`` ``[N, d]``, where ``S`` ``[N, N]`` is the CSR matrix
    ``(crow, col, values)`` and must be symmetric; differentiable w.r.t. ``values`` ``[nnz]``
    and ``x`` (first order), e.g. for learned edge weights."""
    if x.dim() != 2 or crow.numel() != x.shape[0] + 1:
        raise ValueError(
            f"x must be [N, d] with N = {crow.numel() - 1} rows, got {tuple(x.shape)}"
        )
    return cast(Tensor, _SymmetricWeightedMatmul.apply(crow, col, values, x))


class _SymmetricSampledDot(torch.autograd.Function):
    """``<a_r, b_c>`` at the stored entries of a symmetric CSR pattern (first order only)."""

    @staticmethod
    def forward(ctx: Any, crow: Tensor, col: Tensor, transposed: Tensor, a: Tensor,
                b: Tensor) -> Tensor:
        shape = (a.shape[0], a.shape[0])
        pattern = _csr(crow, col, a.new_zeros(col.numel()), shape)
        ctx.save_for_backward(a, b)
        ctx.parts = crow, col, transposed, shape
        return _entry_dots(pattern, a, b)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, None, Tensor, Tensor]:
        a, b = ctx.saved_tensors
        crow, col, transposed, shape = ctx.parts
        # With G the sparse matrix of the entries' gradients: grad_a = G b and
        # grad_b = G^T a, where G^T has the same pattern and entry k holds G's entry
        # transposed[k]; both are plain products, no transpose is built.
        grad_a = _product(_csr(crow, col, grad, shape), b)
        grad_b = _product(_csr(crow, col, grad.index_select(0, transposed), shape), a)
        return None, None, None, grad_a, grad_b


def symmetric_sampled_dot(crow: Tensor, col: Tensor, transposed: Tensor, a: Tensor,
                          b: Tensor) -> Tensor:
    """``[nnz]``: entry ``k`` at ``(r, c)`` of a symmetric CSR pattern ``(crow, col)`` gets
    ``<a_r, b_c>``, for ``a`` and ``b`` ``[N, d]``; ``transposed[k]`` ``[nnz]`` is the entry
    at ``(c, r)`` (:meth:`NormalizedAdjacency.transposed_entries`). Differentiable w.r.t.
    ``a`` and ``b`` (first order), without an ``[nnz, d]`` temporary."""
    if a.dim() != 2 or a.shape != b.shape or crow.numel() != a.shape[0] + 1:
        raise ValueError(
            f"a and b must both be [N, d] with N = {crow.numel() - 1} rows, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    if transposed.shape != col.shape:
        raise ValueError(
            f"transposed must have one entry per stored entry ({col.numel()}), got "
            f"{tuple(transposed.shape)}"
        )
    return cast(Tensor, _SymmetricSampledDot.apply(crow, col, transposed, a, b))


class NormalizedAdjacency(nn.Module):
    """``A_hat = D^-1/2 A D^-1/2`` of the user-item graph of ``train``, stored as CSR.

    Shape ``[N, N]`` with ``N = n_users + n_items`` and ``nnz = 2 * len(train)`` (each
    interaction is an undirected edge, stored in both directions).

    Buffers (not in the state dict; ``.to()`` moves and casts them): ``crow_indices``
    ``[N + 1]``, ``col_indices`` ``[nnz]``, ``values`` ``[nnz]`` and ``edge_ids`` ``[nnz]``,
    the row of ``train`` (undirected edge) each stored entry belongs to.
    """

    crow_indices: Tensor
    col_indices: Tensor
    values: Tensor
    edge_ids: Tensor

    def __init__(self, train: Interactions) -> None:
        super().__init__()
        self.n_users = train.n_users
        self.n_items = train.n_items
        self.n_nodes = train.n_users + train.n_items
        self.n_edges = len(train)
        item_nodes = train.items + train.n_users
        rows = np.concatenate([train.users, item_nodes])
        cols = np.concatenate([item_nodes, train.users])
        edge_ids = np.tile(np.arange(self.n_edges, dtype=np.int64), 2)
        degree = np.bincount(rows, minlength=self.n_nodes)
        inv_sqrt = np.zeros(self.n_nodes)
        np.divide(1.0, np.sqrt(degree), out=inv_sqrt, where=degree > 0)
        order = np.lexsort((cols, rows))
        crow = np.zeros(self.n_nodes + 1, dtype=np.int64)
        np.cumsum(degree, out=crow[1:])
        values = torch.from_numpy((inv_sqrt[rows] * inv_sqrt[cols])[order])
        self.register_buffer("crow_indices", torch.from_numpy(crow), persistent=False)
        self.register_buffer("col_indices", torch.from_numpy(cols[order]), persistent=False)
        self.register_buffer("values", values.to(torch.get_default_dtype()), persistent=False)
        self.register_buffer("edge_ids", torch.from_numpy(edge_ids[order]), persistent=False)
        self._matrix = SparseMatrix.symmetric(self.crow_indices, self.col_indices, self.values)

    def _apply(self, fn: Any, recurse: bool = True) -> NormalizedAdjacency:
        # .to(), .cuda(), .double() ... replace the buffers: rebuild the matrix here, eagerly,
        # because a sparse tensor cannot be created inside torch.func transforms.
        super()._apply(fn, recurse)
        self._matrix = SparseMatrix.symmetric(self.crow_indices, self.col_indices, self.values)
        return self

    def matrix(self) -> SparseMatrix:
        """``A_hat`` ``[N, N]`` on the buffers' device and dtype (built when they change)."""
        return self._matrix

    def edge_dropout(self, rate: float) -> SparseMatrix:
        """``A_hat`` ``[N, N]`` with each undirected edge dropped with probability ``rate``.

        Both directions of an edge are dropped together, so the result stays symmetric, as
        the backward of :func:`sparse_matmul` assumes for it; kept entries are scaled by
        ``1 / (1 - rate)``. Draws from torch's global RNG.
        """
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"edge dropout rate must be in [0, 1), got {rate}")
        if rate == 0.0:
            return self.matrix()
        keep = torch.rand(self.n_edges, device=self.values.device) >= rate
        values = self.values * keep[self.edge_ids] / (1.0 - rate)
        return SparseMatrix.symmetric(self.crow_indices, self.col_indices, values)

    def edge_list(self) -> EdgeList:
        """The entries of ``A_hat`` (both directions of every edge) as coordinates."""
        degree = self.crow_indices.diff()
        rows = torch.repeat_interleave(torch.arange(self.n_nodes, device=degree.device), degree)
        return EdgeList(rows, self.col_indices, self.values, self.edge_ids)

    def transposed_entries(self) -> Tensor:
        """``[nnz]``: for each stored entry ``(r, c)``, the index of the entry ``(c, r)``
        (the other direction of the same undirected edge)."""
        rows = self.edge_list().rows
        # Each edge's two entries side by side, the user-to-item direction first.
        order = torch.argsort(self.edge_ids * 2 + (rows >= self.n_users).long())
        transposed = torch.empty_like(order)
        transposed[order[0::2]] = order[1::2]
        transposed[order[1::2]] = order[0::2]
        return transposed

    def subgraph(self, keep: Tensor) -> SparseMatrix:
        """The normalized adjacency ``D'^-1/2 A' D'^-1/2`` of the graph that keeps only the
        undirected edges where ``keep`` ``[n_edges]`` (bool) is True, degrees recounted."""
        if keep.shape != (self.n_edges,) or keep.dtype != torch.bool:
            raise ValueError(
                f"keep must be a bool tensor of shape ({self.n_edges},), got "
                f"{keep.dtype} {tuple(keep.shape)}"
            )
        rows, cols, _, edge_ids = self.edge_list()
        kept = keep[edge_ids]
        degree = torch.zeros(self.n_nodes, dtype=self.values.dtype, device=self.values.device)
        degree.index_add_(0, rows, kept.to(degree.dtype))
        inv_sqrt = torch.where(degree > 0, degree.clamp(min=1).rsqrt(), torch.zeros_like(degree))
        values = inv_sqrt[rows] * inv_sqrt[cols] * kept
        return SparseMatrix.symmetric(self.crow_indices, self.col_indices, values)

    def matmul(self, x: Tensor, matrix: SparseMatrix | None = None) -> Tensor:
        """``A_hat x`` for ``x`` ``[N, d]`` -> ``[N, d]``; ``matrix`` replaces ``A_hat`` (e.g.
        a matrix from :meth:`edge_dropout`)."""
        return sparse_matmul(self.matrix() if matrix is None else matrix, x)

    def extra_repr(self) -> str:
        return f"n_users={self.n_users}, n_items={self.n_items}, n_edges={self.n_edges}"
