"""The REML profiles of the traits of many patterns with covariates of their own, evaluated together.

The patterns that share a decomposition through indicator covariates
(:mod:`lmmcore.pattern_dummies`) have the same eigenvalues d but each its own
rotated covariates ``X*_k`` (the indicators of its missing individuals). Their
null fits need the same profile evaluations (grid, brackets, root of the
slope) as one pattern's; :class:`StackedProfiles` does them for the traits of
all patterns at once, so that the null search of
:func:`lmmcore.null_search.null_h2_stacked` runs once per group instead of
once per pattern.

It holds each pattern's :class:`~lmmcore.profile_stats.TraitProfiles` and
answers as they would, trait by trait: the sufficient statistics are theirs,
stacked (zero beyond a pattern's p columns), and the normal equations
``A_t = X*_k' W X*_k`` are the products of the weights with each pattern's
``vec(x*_i x*_i')`` (one matrix product for all patterns), padded with the
identity beyond its p columns, which changes neither ``c' A^{-1} c`` nor
``log |A|`` nor ``tr(A^{-1} B)``. The REML formula then takes each trait's
p and ``log |X'X|`` (:func:`lmmcore.likelihood.loglik_from_rss`). h where a
weight exceeds 1e4 are left to each pattern's own profiles (explicit
residuals).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .likelihood import loglik_from_rss
from .profile_stats import TraitProfiles, inverse_cholesky, slope_sums

__all__ = ["StackedProfiles"]


class StackedProfiles:
    """The REML profiles of the traits of several :class:`~lmmcore.profile_stats.TraitProfiles` (same d).

    Traits are numbered across the parts, one part after another; the
    methods are those of :class:`~lmmcore.profile_stats.TraitProfiles` that
    the null search uses (``grid``, ``values``, ``slopes``, ``singular``).
    """

    def __init__(self, parts: Sequence[TraitProfiles]):
        if any(part.method != "reml" for part in parts):
            raise ValueError("StackedProfiles is for REML profiles")
        self.parts = list(parts)
        self.method = "reml"
        self.rot = None
        first = self.parts[0]
        self.dm1 = first.dm1
        n = first.rot.n
        self.n = n
        sizes = [part.n_traits for part in self.parts]
        self.owner = np.repeat(np.arange(len(sizes)), sizes)
        self.local = np.concatenate([np.arange(s) for s in sizes])
        p = max(part.rot.p for part in self.parts)
        self.pmax = p
        T = int(sum(sizes))
        self.q = np.zeros((1 + p, T, n))
        self.xx = np.zeros((n, len(sizes), p, p))  # each part's vec(x* x*') once
        self.eye = np.zeros((T, p, p))  # the identity beyond each trait's own p columns
        t0 = 0
        for k, (part, s) in enumerate(zip(self.parts, sizes)):
            pk = part.rot.p
            self.q[: 1 + pk, t0:t0 + s] = part.q
            self.xx[:, k, :pk, :pk] = part.xx.reshape(n, pk, pk)
            idx = np.arange(pk, p)
            self.eye[t0:t0 + s, idx, idx] = 1.0
            t0 += s
        self.xx = self.xx.reshape(n, len(sizes) * p * p)
        self.p = np.repeat([part.rot.p for part in self.parts], sizes).astype(float)
        self.logdet_XtX = np.repeat([part.rot.logdet_XtX for part in self.parts], sizes)

    @property
    def n_traits(self) -> int:
        return int(self.owner.size)

    @property
    def singular(self) -> bool:
        return self.parts[0].singular

    def _normal(self, W: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """``A`` of every trait (rows of W shared by all: (H, T, p, p)) or of lane l's trait ``cols[l]`` ((L, p, p))."""
        p, K = self.pmax, len(self.parts)
        if cols is None:
            A = (W @ self.xx).reshape(W.shape[0], K, p, p)[:, self.owner]
            return A + self.eye[None]
        A = np.empty((W.shape[0], p, p))
        owner = self.owner[cols]
        xx = self.xx.reshape(self.n, K, p * p)
        for k in np.unique(owner):  # lanes grouped by pattern: one product each
            sel = np.flatnonzero(owner == k)
            A[sel] = (W[sel] @ xx[:, k]).reshape(sel.size, p, p)
        return A + self.eye[cols]

    def _finish(self, yWy, c, A, logdet_V, p, logdet_XtX, Linv=None):
        if Linv is None:
            Linv = inverse_cholesky(A)
        z = np.einsum("...ab,...b->...a", Linv, c)
        rss = yWy - np.einsum("...a,...a->...", z, z)
        logdet_A = -2.0 * np.log(np.diagonal(Linv, axis1=-2, axis2=-1)).sum(axis=-1)
        return loglik_from_rss("reml", rss, self.n, p, logdet_V, logdet_XtWX=(logdet_A,), logdet_XtX=logdet_XtX)

    def _by_part(self, h: np.ndarray, cols: np.ndarray, what: str) -> np.ndarray:
        """Lanes evaluated by their own pattern's profiles (``values`` or ``slopes``)."""
        out = np.empty(h.size)
        owner = self.owner[cols]
        for k in np.unique(owner):
            sel = np.flatnonzero(owner == k)
            out[sel] = getattr(self.parts[k], what)(h[sel], self.local[cols[sel]])
        return out

    def grid(self, h2) -> np.ndarray:
        """The profile of every trait at every h of a grid, shape ``(len(h2), T)``."""
        h2 = np.atleast_1d(np.asarray(h2, dtype=float))
        out = np.full((h2.size, self.n_traits), -np.inf)
        first = self.parts[0]
        steep = first._steep(h2)
        if np.any(steep):
            t0 = 0
            for part in self.parts:
                out[steep, t0:t0 + part.n_traits] = part.grid(h2[steep])
                t0 += part.n_traits
        at_one = steep | ((h2 >= 1.0) & self.singular)
        h = h2[~at_one]
        if h.size:
            F = 1.0 + h[:, None] * self.dm1
            logdet_V = first._logdet(F)
            W = 1.0 / F
            A = self._normal(W)
            yWy = W @ self.q[0].T
            c = np.stack([W @ self.q[1 + a].T for a in range(self.pmax)], axis=-1)
            out[~at_one] = self._finish(yWy, c, A, logdet_V[:, None], self.p[None, :], self.logdet_XtX[None, :])
        return out

    def values(self, h2, cols) -> np.ndarray:
        """The profile of trait ``cols[l]`` at ``h2[l]`` for every lane l, shape (L,)."""
        h2 = np.atleast_1d(np.asarray(h2, dtype=float))
        cols = np.asarray(cols, dtype=int)
        out = np.empty(h2.shape)
        first = self.parts[0]
        steep = first._steep(h2)
        lanes = np.flatnonzero(~steep)
        if lanes.size:
            h, c = h2[lanes], cols[lanes]
            F = first._factors(h)
            logdet_V = first._logdet(F)
            W = np.reciprocal(F, out=F)
            A = self._normal(W, c)
            sums = [np.einsum("ln,ln->l", W, qk[c]) for qk in self.q]
            out[lanes] = self._finish(sums[0], np.stack(sums[1:], axis=-1), A, logdet_V, self.p[c],
                                      self.logdet_XtX[c])
        if np.any(steep):
            out[steep] = self._by_part(h2[steep], cols[steep], "values")
        return out

    def slopes(self, h2, cols) -> np.ndarray:
        """``dL/dh`` of trait ``cols[l]`` at ``h2[l] < 1``, shape (L,) (:meth:`TraitProfiles.slopes`'s formula)."""
        h = np.atleast_1d(np.asarray(h2, dtype=float))
        cols = np.asarray(cols, dtype=int)
        first = self.parts[0]
        steep = first._steep(h)
        out = np.empty(h.size)
        if np.any(steep):
            out[steep] = self._by_part(h[steep], cols[steep], "slopes")
        lanes = np.flatnonzero(~steep)
        if lanes.size == 0:
            return out
        hh, c = h[lanes], cols[lanes]
        W = np.reciprocal(first._factors(hh))
        V = W * W
        V *= self.dm1
        A = self._normal(W, c)
        B = self._normal(V, c) - self.eye[c]
        rss, slope_rss, tr = slope_sums(W, V, A, B, [qk[c] for qk in self.q])
        trace = W @ self.dm1
        out[lanes] = -0.5 * ((self.n - self.p[c]) * slope_rss / rss + trace - tr)
        return out
