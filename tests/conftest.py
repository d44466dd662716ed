"""Shared fixtures: small seeded data sets made by the tests themselves."""

from __future__ import annotations

import numpy as np
import pytest


def random_kinship(n: int, n_markers: int, seed: int) -> np.ndarray:
    """A kinship from random 0/1/2 genotypes (rank <= n_markers; centred has a zero eigenvalue)."""
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.1, 0.9, n_markers)
    G = rng.binomial(2, freq, size=(n, n_markers)).astype(float)
    Z = (G - 2 * freq) / np.sqrt(2 * freq * (1 - freq))
    return Z @ Z.T / n_markers


def simulate_y(K, X, beta, h2, sigma2, seed):
    rng = np.random.default_rng(seed)
    n = K.shape[0]
    V = sigma2 * (h2 * K + (1 - h2) * np.eye(n))
    w, U = np.linalg.eigh(V)
    return X @ beta + U @ (np.sqrt(np.clip(w, 0, None)) * rng.normal(size=n))


def boundary_case(which: str):
    """Data whose profile is maximised at a boundary (the tests check it by brute force).

    In K's eigenbasis, a phenotype whose variance falls as d_i grows fits
    best with h2 = 0; one whose variance grows like d_i^2 fits best with h2 = 1.
    """
    n = 50
    K = random_kinship(n, 200, seed=21)
    d, U = np.linalg.eigh(K)
    z = np.random.default_rng(22).normal(size=n)
    scale = 1.0 / np.sqrt(1.0 + d) if which == "zero" else d
    y = U @ (scale * z) + 3.0
    return K, y, np.ones((n, 1))


@pytest.fixture
def small_data():
    """n = 40, full-rank kinship, intercept + one covariate, h2 = 0.6."""
    n = 40
    K = random_kinship(n, 400, seed=1)
    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = simulate_y(K, X, np.array([1.0, 0.5]), 0.6, 2.0, seed=3)
    return K, y, X


@pytest.fixture
def lowrank_data():
    """n = 40, kinship of rank 10 (from 10 markers): V is singular at h2 = 1."""
    n = 40
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(n, 10))
    K = Z @ Z.T / 10
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = simulate_y(K + 1e-9 * np.eye(n), X, np.array([0.0, 1.0]), 0.5, 1.0, seed=6)
    return K, y, X
