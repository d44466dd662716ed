"""Eigendecomposition and rotation: reconstruction, clipping, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_kinship
from lmmcore import LMMInputError, decompose_kinship, rotate


def test_reconstructs_kinship():
    K = random_kinship(30, 100, seed=3)
    eig = decompose_kinship(K)
    U, d = eig.vectors, eig.values
    np.testing.assert_allclose(U @ np.diag(d) @ U.T, K, atol=1e-12)
    np.testing.assert_allclose(U.T @ U, np.eye(30), atol=1e-12)


def test_centred_relationship_matrix_has_an_exact_zero_eigenvalue():
    K = random_kinship(25, 500, seed=4)
    n = K.shape[0]
    P = np.eye(n) - 1.0 / n
    eig = decompose_kinship(P @ K @ P)  # centred: P 1 = 0
    assert eig.n_zero == 1
    assert eig.values[0] == 0.0


def test_small_negative_rounding_is_clipped_to_zero():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(20, 5))
    K = Z @ Z.T
    K_noisy = K - 1e-12 * np.eye(20)  # eigenvalues of -1e-12: rounding, not structure
    eig = decompose_kinship(K_noisy)
    assert eig.n_zero == 15 and np.all(eig.values >= 0)


def test_clearly_negative_eigenvalue_says_positive_semidefinite():
    K = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    with pytest.raises(LMMInputError, match="positive semidefinite"):
        decompose_kinship(K)


@pytest.mark.parametrize(
    "K, pattern",
    [
        (np.ones((3, 4)), "3 x 4; it must be square"),
        (np.array([[1.0, 0.5], [0.4, 1.0]]), "not symmetric"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "missing or infinite"),
        (np.array([[np.inf, 0.0], [0.0, 1.0]]), "missing or infinite"),
    ],
)
def test_bad_kinship_matrices_are_refused(K, pattern):
    with pytest.raises(LMMInputError, match=pattern):
        decompose_kinship(K)


def test_rotation_preserves_inner_products_and_logdet():
    K = random_kinship(30, 100, seed=8)
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(30), rng.normal(size=30)])
    y = rng.normal(size=30)
    rot = rotate(decompose_kinship(K), y, X)
    np.testing.assert_allclose(rot.X.T @ rot.X, X.T @ X, atol=1e-10)
    np.testing.assert_allclose(rot.y[:, 0] @ rot.y[:, 0], y @ y, rtol=1e-12)
    assert rot.logdet_XtX == pytest.approx(np.linalg.slogdet(X.T @ X)[1], rel=1e-12)
    assert rot.constant_column == 0


def test_small_kinships_are_decomposed_on_one_blas_thread_and_threads_come_back():
    # below ONE_THREAD_BELOW the decomposition runs on one BLAS thread; afterwards the
    # process's thread count is what it was, also when several threads decompose at once
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    from lmmcore.eigen import ONE_THREAD_BELOW, decompose_kinship

    def blas_threads():
        return [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]

    before = blas_threads()
    rng = np.random.default_rng(5)
    A = rng.normal(size=(40, 40))
    K = A @ A.T / 40
    assert K.shape[0] < ONE_THREAD_BELOW
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: decompose_kinship(K), range(16)))
    assert blas_threads() == before
    # the decomposition itself: K = U D U' (checked densely)
    eig = results[0]
    np.testing.assert_allclose(eig.vectors @ np.diag(eig.values) @ eig.vectors.T, K, atol=1e-12)
