"""The polynomial step of the exact scan (lmmcore.chebyshev), against numpy and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.polynomial import chebyshev as C

from lmmcore.chebyshev import coefficients, evaluate, lobatto_nodes, maximize_series, node_weights, tail


@pytest.mark.parametrize("k", [3, 8, 17])
def test_nodes_are_the_chebyshev_lobatto_points(k):
    x = lobatto_nodes(k)
    assert x[0] == -1.0 and x[-1] == 1.0 and np.all(np.diff(x) > 0)
    # the extrema of T_{k-1} on [-1, 1]: |T_{k-1}(x_j)| = 1
    np.testing.assert_allclose(np.abs(C.chebval(x, [0] * (k - 1) + [1])), 1.0, atol=1e-13)


def test_coefficients_interpolate_like_a_least_squares_fit_of_full_degree():
    rng = np.random.default_rng(0)
    k = 13
    x = lobatto_nodes(k)
    values = rng.normal(size=(k, 5))
    ours = coefficients(values)
    for j in range(5):
        ref = C.chebfit(x, values[:, j], k - 1)  # numpy's own fit (exact interpolation at degree k - 1)
        np.testing.assert_allclose(ours[:, j], ref, atol=1e-12)
    np.testing.assert_allclose(C.chebvander(x, k - 1) @ ours, values, atol=1e-12)


def test_interpolation_of_an_analytic_function_converges_and_tail_estimates_the_error():
    f = lambda t: 1.0 / (1.0 + np.exp(3.0 * t))  # noqa: E731 - logistic: poles at Im t = pi / 3
    z = np.linspace(-1, 1, 1001)
    errors, tails = [], []
    for k in (9, 17, 25):
        coef = coefficients(f(lobatto_nodes(k)))
        errors.append(np.max(np.abs(C.chebval(z, coef) - f(z))))
        tails.append(float(tail(coef)))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-9
    for e, t in zip(errors, tails):
        assert e / 10 < t < 100 * e  # the last coefficients are of the size of the error


def test_node_weights_reproduce_the_interpolant():
    rng = np.random.default_rng(1)
    k = 11
    values = rng.normal(size=(k, 4))
    coef = coefficients(values)
    x = rng.uniform(-1, 1, size=4)
    w = node_weights(x, k)
    np.testing.assert_allclose(np.einsum("lj,jl->l", w, values), C.chebval(x, coef, tensor=False), atol=1e-12)
    np.testing.assert_allclose(evaluate(coef, x), C.chebval(x, coef, tensor=False), atol=1e-12)
    np.testing.assert_allclose(node_weights(lobatto_nodes(k), k), np.eye(k), atol=1e-12)


def test_maximum_of_each_series_equals_a_brute_force_grid():
    rng = np.random.default_rng(2)
    k = 17
    x = lobatto_nodes(k)
    centres = rng.uniform(-0.9, 0.9, size=6)
    functions = [
        lambda t, c=c: -((t - c) ** 2) + 0.1 * np.sin(5 * t) for c in centres
    ] + [
        lambda t: t,  # largest at the right end
        lambda t: -t + 0.01 * t**3,  # largest at the left end
        lambda t: np.cos(6 * t) + 0.3 * t,  # several local maxima: the global one is near t = 1
        lambda t: np.zeros_like(t),  # flat
    ]
    values = np.column_stack([f(x) for f in functions])
    coef = coefficients(values)
    res = maximize_series(coef)
    z = np.linspace(-1, 1, 2_000_001)
    for j in range(len(functions)):
        p = C.chebval(z, coef[:, j])
        i = np.argmax(p)
        assert res.value[j] >= p[i] - 1e-12
        assert res.value[j] == pytest.approx(C.chebval(res.x[j], coef[:, j]), abs=1e-13)
        if j < len(functions) - 1:  # the flat one has no unique maximiser
            assert res.x[j] == pytest.approx(z[i], abs=2e-6)
    assert res.x[6] == 1.0 and res.x[7] == -1.0
