"""Aligned-MTL against gradients differentiated by hand (the toy problem: tests/weighting_toy.py).

w = B^T 1 with B = sqrt(lambda_min) V diag(lambda)^{-1/2} V^T = sqrt(lambda_min) K^{-1/2} over the kept
eigenpairs of K. For K = c a a^T (collinear gradients, rank 1) one eigenpair is kept, lambda = c |a|^2
with eigenvector a / |a|, so B = a a^T / |a|^2, w = a (a . 1) / |a|^2 and d = sum_t w_t a_t x = (a . 1) x:
the plain sum of the gradients.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.weighting.aligned_mtl import aligned_weights
from baselines.weighting.sources import PARAMETERS, REPRESENTATION
from tests.weighting_toy import TASKS, THREE_TASKS, X1, X2, step, step_sharing_a_head, TwoHeads, weighting

SQRT5 = math.sqrt(5)


def test_collinear_gradients_give_their_sum():
    method = weighting("aligned_mtl")
    assert method.source == PARAMETERS
    shared, heads, weights = step(method)
    # a = dL/dy = (4, 6): w = (4, 6) * 10 / 52 = (10/13, 15/13), d = 10 x
    assert weights == pytest.approx({"activity": 10 / 13, "segmentation": 15 / 13})
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))  # each head: its own loss's gradient, unweighted
    # three tasks, a = (4, 6, -2): w = a * 8 / 56 = a / 7, d = 8 x
    shared, heads, weights = step(weighting("aligned_mtl", tasks=THREE_TASKS))
    assert weights == pytest.approx({"activity": 4 / 7, "segmentation": 6 / 7, "third": -2 / 7})
    assert shared == pytest.approx([8.0, 16.0])
    assert heads == pytest.approx((8.0, 12.0))


def test_two_gradients_at_an_angle():
    shared, head_b, weights = step_sharing_a_head(weighting("aligned_mtl"))
    # K = [[144, 120], [120, 180]]: tr 324, det 11520 = (48 sqrt5)^2. For a 2 x 2 SPD matrix
    # K^{1/2} = (K + sqrt(det) I) / sqrt(tr + 2 sqrt(det)), whose determinant is sqrt(det), so
    # K^{-1/2} 1 = (180 + 48 sqrt5 - 120, 144 + 48 sqrt5 - 120) / (48 sqrt5 sqrt(324 + 96 sqrt5));
    # lambda_min = (tr - sqrt(tr^2 - 4 det)) / 2 = 162 - 6 sqrt409
    scale = math.sqrt(162 - 6 * math.sqrt(409)) / (48 * SQRT5 * math.sqrt(324 + 96 * SQRT5))
    w = (scale * (60 + 48 * SQRT5), scale * (24 + 48 * SQRT5))
    assert [weights["activity"], weights["segmentation"]] == pytest.approx(w)
    assert w == pytest.approx((0.4283146, 0.3361661))
    assert shared == pytest.approx([w[0] * g1 + w[1] * g2 for g1, g2 in zip((4, 8, 8), (6, 12, 0))])
    assert head_b == pytest.approx(12.0)


@pytest.mark.parametrize(
    ("rows", "expected_weights", "expected_direction"),
    [
        # orthogonal, norms 1 and 2: K = diag(1, 4), lambda_min = 1, B = diag(1, 1/2): two unit vectors
        ([[1.0, 0.0], [0.0, 2.0]], (1.0, 0.5), (1.0, 1.0)),
        # g = (1, 0), (1, 1): K = [[1, 1], [1, 2]], det 1, tr 3: K^{1/2} = (K + I) / sqrt5 = [[2, 1], [1, 3]] / sqrt5,
        # K^{-1/2} = [[3, -1], [-1, 2]] / sqrt5 (the aligned rows K^{-1/2} G = [[2, -1], [1, 2]] / sqrt5,
        # orthonormal); sqrt(lambda_min) = sqrt((3 - sqrt5) / 2) = (sqrt5 - 1) / 2, so
        # w = (sqrt5 - 1) / (2 sqrt5) (2, 1) and d = (sqrt5 - 1) / (2 sqrt5) (3, 1)
        ([[1.0, 0.0], [1.0, 1.0]], ((SQRT5 - 1) / SQRT5, (SQRT5 - 1) / (2 * SQRT5)), (3 * (SQRT5 - 1) / (2 * SQRT5), (SQRT5 - 1) / (2 * SQRT5))),
        # conflicting, g = (1, 0), (-1, 1): K = [[1, -1], [-1, 2]], K^{1/2} = [[2, -1], [-1, 3]] / sqrt5,
        # K^{-1/2} = [[3, 1], [1, 2]] / sqrt5, column sums (4, 3) / sqrt5, times (sqrt5 - 1) / 2
        ([[1.0, 0.0], [-1.0, 1.0]], (2 * (SQRT5 - 1) / SQRT5, 1.5 * (SQRT5 - 1) / SQRT5), ((SQRT5 - 1) / (2 * SQRT5), 1.5 * (SQRT5 - 1) / SQRT5)),
    ],
)
def test_two_gradients_directly(rows, expected_weights, expected_direction):
    gradients = torch.tensor(rows)
    direction, weights = weighting("aligned_mtl").aggregate(gradients, torch.ones(2))
    assert weights.tolist() == pytest.approx(expected_weights)
    assert direction.tolist() == pytest.approx(expected_direction)


def test_the_aligned_gradients_are_orthogonal_with_equal_norms():
    # B G has Gram matrix lambda_min I: rebuild B from the weights' definition on a random 3-task problem
    gradients = torch.tensor([[1.0, 2.0, 0.0, 1.0], [0.0, 1.0, -1.0, 3.0], [2.0, -1.0, 1.0, 0.0]], dtype=torch.float64)
    gram = (gradients @ gradients.T).numpy()
    values, vectors = np.linalg.eigh(gram)
    alignment = math.sqrt(values.min()) * (vectors / np.sqrt(values)) @ vectors.T
    aligned = alignment @ gradients.numpy()
    assert aligned @ aligned.T == pytest.approx(values.min() * np.eye(3))
    direction, weights = weighting("aligned_mtl", tasks=THREE_TASKS).aggregate(gradients, torch.ones(3))
    assert weights.numpy() == pytest.approx(alignment.sum(axis=0))
    assert direction.numpy() == pytest.approx(aligned.sum(axis=0))


@pytest.mark.parametrize(
    ("x", "expected_weights", "expected_direction"),
    [
        (X1, (10 / 13, 15 / 13), 10.0),  # dL/dy = (4, 6): the sum, w = (4, 6) 10 / 52
        (X2, (5 * 14 / 106, 9 * 14 / 106), 14.0),  # (5, 9): w = (5, 9) 14 / 106
    ],
)
def test_the_representation(x, expected_weights, expected_direction):
    method = weighting("aligned_mtl", gradients=REPRESENTATION)
    assert method.source == REPRESENTATION
    shared, heads, weights = step(method, x, cut=True)
    assert [weights[task] for task in TASKS] == pytest.approx(expected_weights)
    assert shared == pytest.approx([expected_direction * x[0], expected_direction * x[1]])  # dL/dw = d x
    assert heads == pytest.approx((8.0, 12.0) if x == X1 else (12.5, 6 * 1.5 * 2.5))


def test_zero_and_identical_gradients():
    model = TwoHeads()
    with torch.no_grad():  # a = b = 0: L_a = 0 and dL_s/dw = 6 b (b y - 1) x = 0
        model.head_activity.zero_()
        model.head_segmentation.zero_()
    shared, heads, weights = step(weighting("aligned_mtl"), model=model)
    assert weights == {"activity": 0.0, "segmentation": 0.0}  # nothing to align
    assert shared == [0.0, 0.0]
    assert all(math.isfinite(value) for value in heads)
    for rows, expected_weights, expected_direction in (
        ([[1.0, 2.0], [1.0, 2.0]], (1.0, 1.0), (2.0, 4.0)),  # rank 1, a = (1, 1): the sum
        ([[0.0, 0.0], [1.0, 2.0]], (0.0, 1.0), (1.0, 2.0)),  # the zero eigenvalue is dropped
    ):
        direction, weights = weighting("aligned_mtl").aggregate(torch.tensor(rows), torch.ones(2))
        assert weights.tolist() == pytest.approx(expected_weights)
        assert direction.tolist() == pytest.approx(expected_direction)
    # eigenvalues at rounding level (here 1e-9 of the largest, below 2 x float32's eps) are dropped too
    assert aligned_weights(np.diag([1.0, 1e-9]), float(np.finfo(np.float32).eps)).tolist() == pytest.approx([1.0, 0.0])


def test_single_task_no_state_and_nothing_shared():
    method = weighting("aligned_mtl", tasks=("segmentation",))
    model = TwoHeads()
    assert method.backward({"segmentation": model.losses(X1)["segmentation"]}, [model.shared.weight]) == pytest.approx({"segmentation": 1.0})
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx([6.0, 12.0])
    assert method.state_dict() == {}
    shared, heads, weights = step(weighting("aligned_mtl"), with_shared=False)
    assert shared == pytest.approx([10.0, 20.0]) and heads == pytest.approx((8.0, 12.0))
    assert weights == {"activity": 1.0, "segmentation": 1.0}
