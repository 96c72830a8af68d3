"""The exact small-QP solver (baselines/weighting/qp.py) against problems solved on paper and against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from baselines.weighting.gradients import gram_matrix
from baselines.weighting.qp import (
    MAX_VARIABLES,
    check_task_count,
    combine,
    kept_eigenpairs,
    min_norm_weights,
    solve_qp,
)


@pytest.mark.parametrize(
    ("quadratic", "linear", "lower", "expected"),
    [
        # 1/2 (x1^2 + x2^2) - x1 - x2: the unconstrained minimiser (1, 1) is feasible
        ([[1, 0], [0, 1]], [-1, -1], [0, 0], [1.0, 1.0]),
        # 1/2 (x1^2 + x2^2) - x1 + x2: unconstrained (1, -1) is not; x2 = 0 is active with
        # multiplier df/dx2 = x2 + 1 = 1 >= 0, and x1 = 1 stays free
        ([[1, 0], [0, 1]], [-1, 1], [0, 0], [1.0, 0.0]),
        # 1/2 |x|^2 with x >= (1, -1): x1 held at its bound 1 (multiplier x1 = 1), x2 = 0 free
        ([[1, 0], [0, 1]], [0, 0], [1, -1], [1.0, 0.0]),
        # 1/2 (2 x1^2 + 2 x1 x2 + x2^2) - 3 x1 - x2: stationary where 2 x1 + x2 = 3 and x1 + x2 = 1,
        # x = (2, -1), infeasible; with x2 = 0 active: 2 x1 = 3, x1 = 1.5, multiplier x1 + x2 - 1 = 0.5 >= 0
        ([[2, 1], [1, 1]], [-3, -1], [0, 0], [1.5, 0.0]),
        # UPGrad's projection for K = [[1, -1], [-1, 2]], v >= (1/2, 0): v1 held at 1/2,
        # dv2: -1/2 + 2 v2 = 0 -> v2 = 1/4; multiplier (K v)_1 = 1/2 - 1/4 = 1/4 >= 0
        ([[1, -1], [-1, 2]], [0, 0], [0.5, 0], [0.5, 0.25]),
        # and v >= (0, 1/2): v1 - 1/2 = 0 -> v1 = 1/2; multiplier (K v)_2 = -1/2 + 1 = 1/2 >= 0
        ([[1, -1], [-1, 2]], [0, 0], [0, 0.5], [0.5, 0.5]),
    ],
)
def test_bound_constrained_problems_solved_on_paper(quadratic, linear, lower, expected):
    assert solve_qp(quadratic, linear, lower).tolist() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("gram", "expected"),
    [
        # two vectors: w = (gamma, 1 - gamma), gamma = (K22 - K12) / (K11 + K22 - 2 K12) = 4 / 5
        ([[1, 0], [0, 4]], [0.8, 0.2]),
        # K12 = 2 >= K11 = 1: the first vector is the min-norm point itself
        ([[1, 2], [2, 5]], [1.0, 0.0]),
        # K12 = 3 >= K22 = 2: the second
        ([[5, 3], [3, 2]], [0.0, 1.0]),
        # g1 = (1, 0), g2 = (-1, 1): gamma = (2 + 1) / (1 + 2 + 2) = 3/5
        ([[1, -1], [-1, 2]], [0.6, 0.4]),
        # one vector
        ([[7]], [1.0]),
    ],
)
def test_simplex_min_norm_solved_on_paper(gram, expected):
    assert min_norm_weights(np.array(gram, dtype=float)).tolist() == pytest.approx(expected, abs=1e-12)


def test_simplex_with_a_linear_term():
    # 1/2 |x|^2 + x2 / 2 with x1 + x2 = 1: x1 + nu = 0, x2 + 1/2 + nu = 0 -> x1 = x2 + 1/2 -> (3/4, 1/4)
    assert solve_qp(np.eye(2), [0, 0.5], sum_to_one=True).tolist() == pytest.approx([0.75, 0.25], abs=1e-12)
    # x2 + 2 + nu = 0 would need x1 = x2 + 2: x2 = 0 is active, x = (1, 0)
    assert solve_qp(np.eye(2), [0, 2], sum_to_one=True).tolist() == pytest.approx([1.0, 0.0], abs=1e-12)
    # and with lower bounds (0.1, 0.2): x1 = x2 + 1/2 and x1 + x2 = 1 -> (3/4, 1/4), both free
    assert solve_qp(np.eye(2), [0, 0.5], [0.1, 0.2], sum_to_one=True).tolist() == pytest.approx([0.75, 0.25], abs=1e-12)
    # bounds (0.8, 0): x1 = 0.8 active, x2 = 0.2; its multiplier x1 + nu with x2 + 1/2 + nu = 0: 0.8 - 0.7 >= 0
    assert solve_qp(np.eye(2), [0, 0.5], [0.8, 0], sum_to_one=True).tolist() == pytest.approx([0.8, 0.2], abs=1e-12)


def test_three_vectors_on_a_line():
    # K = v v^T, v = (4, 6, -2): every w in the simplex with v . w = 0 is a minimiser (norm 0). The
    # largest free set is tried first; its least-norm solution is w = a 1 + b v with 3a + 8b = 1 and
    # 8a + 56b = 0: b = -1/13, a = 7/13, w = (3, 1, 9) / 13, all positive.
    v = np.array([4.0, 6.0, -2.0])
    weights = min_norm_weights(np.outer(v, v))
    assert weights.tolist() == pytest.approx([3 / 13, 1 / 13, 9 / 13], abs=1e-12)
    assert v @ weights == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("gram", [np.ones((3, 3)), np.zeros((3, 3)), 1e-30 * np.ones((2, 2))])
def test_equal_weights_when_every_point_of_the_simplex_is_a_minimiser(gram):
    weights = min_norm_weights(gram)
    assert weights.tolist() == pytest.approx([1 / len(gram)] * len(gram), abs=1e-12)


def test_the_scale_of_the_problem_does_not_matter():
    gram = np.array([[1.0, -1.0], [-1.0, 2.0]])
    for factor in (1e-20, 1e-8, 1.0, 1e12):
        assert min_norm_weights(factor * gram).tolist() == pytest.approx([0.6, 0.4], abs=1e-12)
        assert solve_qp(factor * gram, lower=[0.5, 0]).tolist() == pytest.approx([0.5, 0.25], abs=1e-12)


def test_rounding_level_negative_eigenvalues_are_clipped():
    # diag(1, -1e-12) is read as diag(1, 0): the second vector is the zero vector, the min-norm point
    assert min_norm_weights(np.diag([1.0, -1e-12])).tolist() == pytest.approx([0.0, 1.0], abs=1e-9)


def test_results_are_feasible_exactly():
    rng = np.random.default_rng(3)
    for _ in range(50):
        a = rng.normal(size=(4, 2))
        weights = min_norm_weights(a @ a.T)
        assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0, abs=1e-15)
        lower = rng.uniform(-1, 1, size=4)
        assert (solve_qp(a @ a.T + 0.1 * np.eye(4), rng.normal(size=4), lower) >= lower).all()


def scipy_reference(quadratic, linear, lower, sum_to_one):
    n = len(linear)
    start = np.full(n, 1 / n) if sum_to_one else np.maximum(lower, 0) + 1

    def objective(x):
        return 0.5 * x @ quadratic @ x + linear @ x

    result = minimize(
        objective,
        start,
        jac=lambda x: quadratic @ x + linear,
        method="SLSQP",
        bounds=[(bound, None) for bound in lower],
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}] if sum_to_one else [],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    assert result.success, result.message
    return result.x, objective


@pytest.mark.parametrize("sum_to_one", [True, False])
def test_against_scipy_on_random_problems(sum_to_one):
    rng = np.random.default_rng(0)
    for trial in range(60):
        n = int(rng.integers(1, 7))
        rank = int(rng.integers(1, n + 1))
        factor = rng.normal(size=(n, rank))
        quadratic = factor @ factor.T
        if sum_to_one:
            linear, lower = np.zeros(n), np.zeros(n)
        else:  # positive definite, so that the problem is bounded below whatever the linear term
            quadratic += 0.1 * np.eye(n)
            linear, lower = rng.normal(size=n), rng.normal(size=n) * 0.5
        x = solve_qp(quadratic, linear, lower, sum_to_one=sum_to_one)
        reference, objective = scipy_reference(quadratic, linear, lower, sum_to_one)
        assert (x >= lower).all()
        # never worse than scipy; the same point where the minimiser is unique
        assert objective(x) <= objective(reference) + 1e-9, trial
        if not sum_to_one or rank == n:
            assert x == pytest.approx(reference, abs=1e-5), trial


def test_refusals():
    with pytest.raises(ValueError, match=f"at most {MAX_VARIABLES} variables, got 11"):
        solve_qp(np.eye(11))
    with pytest.raises(ValueError, match="at most 10 tasks; got 11"):
        check_task_count(11, "mgda")
    check_task_count(MAX_VARIABLES, "mgda")
    with pytest.raises(ValueError, match="non-finite"):
        min_norm_weights(np.array([[1.0, math.nan], [math.nan, 1.0]]))
    with pytest.raises(ValueError, match="infeasible"):
        solve_qp(np.eye(2), lower=[0.6, 0.6], sum_to_one=True)
    with pytest.raises(ValueError, match="no minimiser"):
        solve_qp(np.zeros((1, 1)), linear=[-1.0])  # min -x over x >= 0
    with pytest.raises(ValueError, match="square"):
        solve_qp(np.ones((2, 3)))
    with pytest.raises(ValueError, match="2 values"):
        solve_qp(np.eye(2), linear=[1.0])


def test_gram_matrix_and_combination():
    gradients = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0]])
    assert gram_matrix(gradients).tolist() == [[5.0, 2.0], [2.0, 10.0]]
    direction, weights = combine(np.array([0.5, 2.0]), gradients)
    assert direction.tolist() == [0.5, 6.0, 3.0]
    assert direction.dtype == torch.float32 and weights.dtype == torch.float64


def test_kept_eigenpairs_drop_the_numerically_zero_ones():
    # v v^T with v = (1, 2): eigenvalues 5 (eigenvector v / sqrt 5) and 0
    values, vectors = kept_eigenpairs(np.array([[1.0, 2.0], [2.0, 4.0]]), np.finfo(np.float32).eps)
    assert values.tolist() == pytest.approx([5.0])
    assert np.abs(vectors[:, 0]).tolist() == pytest.approx([1 / math.sqrt(5), 2 / math.sqrt(5)])
    values, vectors = kept_eigenpairs(np.zeros((3, 3)), 1e-7)
    assert values.shape == (0,) and vectors.shape == (3, 0)
