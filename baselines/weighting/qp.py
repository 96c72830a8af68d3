"""Small exact solves on a (tasks x tasks) Gram matrix, shared by MGDA, UPGrad, IMTL, Aligned-MTL,
Nash-MTL and FairGrad.

The methods never copy the (tasks, values) gradient matrix G: gradients.gram_matrix forms K = G G^T
once, and everything else happens on K in float64 numpy on the host.

`solve_qp` minimises 1/2 x^T Q x + c^T x subject to x >= lower (and, optionally, sum(x) = 1) for
a positive semi-definite Q, exactly, by enumerating the active sets: for each set A of bounds
held at equality it solves the KKT equations of the free variables (by least squares, so that a
singular Q does no harm) and returns the first solution that is primal feasible and whose
multipliers are non-negative. A convex QP's KKT points are its minimisers, and some minimiser
is found this way: one with the most bounds active has a non-singular free system. So the
answer is exact up to float64 rounding, with no iterations or stopping tolerance to tune. There
are 2^n active sets, so this is for the few tasks of a multi-task model: at most MAX_VARIABLES
variables (tasks), refused above that. The sets are tried in order of their distance from the
bounds whose objective gradient at x = lower is positive (a good guess at the active set),
then from the most free variables to the fewest; when the minimiser is not unique (a singular
Q), that order makes the choice deterministic, and with Q = 0 or identical rows the simplex
problem returns the equal weights 1/n.

`fair_weights` solves K w = w^(-1/alpha) (FairGrad's alpha-fair weights; alpha = 1 is Nash-MTL's
bargaining solution) by damped Newton on the convex problem whose stationarity condition it is.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import Tensor

# 2^10 = 1024 active sets of at most 11 equations each: tens of milliseconds per solve at worst.
MAX_VARIABLES = 10

# Relative tolerances of the KKT checks on the rescaled problem (|Q|, |c| <= 1): far above
# float64 rounding, far below anything that changes a weight visibly.
_STRICT = 1e-9
_LOOSE = 1e-6


def check_task_count(tasks: int, method: str) -> None:
    """Refuse, when a method is built, more tasks than the exact solver enumerates."""
    if tasks > MAX_VARIABLES:
        raise ValueError(
            f"{method} solves its quadratic programme exactly by enumerating the 2^tasks active sets, "
            f"for at most {MAX_VARIABLES} tasks; got {tasks}"
        )



def combine(weights: np.ndarray, gradients: Tensor) -> tuple[Tensor, Tensor]:
    """The direction sum_t w_t g_t (on G's device and dtype) and the weights as a tensor."""
    weights = np.asarray(weights, dtype=np.float64)
    with torch.no_grad():
        direction = torch.as_tensor(weights, dtype=gradients.dtype, device=gradients.device) @ gradients
    return direction, torch.from_numpy(weights)


def kept_eigenpairs(gram: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues of K above max(eigenvalue) * tasks * eps (the numerical rank, with eps the
    machine epsilon of the gradients' dtype, as LibMTL's Aligned-MTL), largest first, and their
    eigenvectors as columns. Both are empty when K is (numerically) zero."""
    values, vectors = np.linalg.eigh((gram + gram.T) / 2)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    if not values.size or values[0] <= 0:
        return values[:0], vectors[:, :0]
    kept = values > values[0] * len(values) * eps
    return values[kept], vectors[:, kept]


def min_norm_weights(gram: np.ndarray) -> np.ndarray:
    """argmin over the simplex of w^T K w: the weights of the min-norm point of the convex hull
    of the vectors whose Gram matrix is K (MGDA)."""
    return solve_qp(gram, sum_to_one=True)


def solve_qp(quadratic, linear=None, lower=None, sum_to_one: bool = False) -> np.ndarray:
    """argmin_x 1/2 x^T Q x + c^T x subject to x >= lower (default 0) and, if `sum_to_one`,
    sum(x) = 1, for a symmetric positive semi-definite Q (n x n, n <= MAX_VARIABLES).
    Negative eigenvalues of Q (rounding in a Gram matrix) are clipped to zero. Raises ValueError
    on bad shapes, non-finite coefficients, an infeasible problem or one with no minimiser."""
    q = np.array(quadratic, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] != q.shape[1] or q.shape[0] == 0:
        raise ValueError(f"the quadratic term must be a non-empty square matrix, got shape {q.shape}")
    n = q.shape[0]
    if n > MAX_VARIABLES:
        raise ValueError(f"the exact QP solver enumerates all 2^n active sets and takes at most {MAX_VARIABLES} variables, got {n}")
    c = np.zeros(n) if linear is None else np.array(linear, dtype=np.float64).reshape(-1)
    low = np.zeros(n) if lower is None else np.array(lower, dtype=np.float64).reshape(-1)
    if c.shape != (n,) or low.shape != (n,):
        raise ValueError(f"expected a linear term and lower bounds of {n} values, got {c.size} and {low.size}")
    if not (np.isfinite(q).all() and np.isfinite(c).all() and np.isfinite(low).all()):
        raise ValueError("the quadratic programme has non-finite coefficients (a NaN or infinite gradient?)")
    if sum_to_one and low.sum() > 1 + _STRICT * max(1.0, np.abs(low).max()):
        raise ValueError(f"infeasible: the lower bounds sum to {low.sum()}, above 1")

    q = (q + q.T) / 2
    values, vectors = np.linalg.eigh(q)
    if values.min() < 0:
        q = (vectors * np.maximum(values, 0)) @ vectors.T
    # The minimiser is unchanged by scaling the objective; scaling makes the tolerances relative.
    scale = max(np.abs(q).max(), np.abs(c).max())
    if scale > 0:
        q, c = q / scale, c / scale

    best, best_violation = None, np.inf
    for active in _active_sets(n, set(np.flatnonzero(q @ low + c > 0))):
        candidate = _kkt_point(q, c, low, active, sum_to_one)
        if candidate is None:
            continue
        x, violation = candidate
        if violation <= _STRICT:
            return _clean(x, low, sum_to_one)
        if violation < best_violation:
            best, best_violation = x, violation
    if best is None or best_violation > _LOOSE:
        raise ValueError("the quadratic programme has no minimiser (its objective is unbounded below on the feasible set)")
    return _clean(best, low, sum_to_one)


def _active_sets(n: int, guess: set[int]):
    """Every subset of range(n), nearest to `guess` first, then with the fewest members first."""
    subsets = [frozenset(s) for size in range(n + 1) for s in itertools.combinations(range(n), size)]
    # sorted() is stable: within a distance, the enumeration's fewest-active-first order stays.
    return sorted(subsets, key=lambda s: len(s ^ guess))


def _kkt_point(q, c, low, active, sum_to_one):
    """The KKT point with the bounds in `active` held at equality, and how far it misses the
    feasibility and multiplier conditions (relative); None where the free equations have no solution."""
    n = len(c)
    free = [i for i in range(n) if i not in active]
    fixed = sorted(active)
    x = low.copy()
    multiplier = 0.0  # of sum(x) = 1
    if free:
        rhs = -(c[free] + q[np.ix_(free, fixed)] @ low[fixed])
        matrix = q[np.ix_(free, free)]
        if sum_to_one:
            k = len(free)
            bordered = np.zeros((k + 1, k + 1))
            bordered[:k, :k], bordered[:k, k], bordered[k, :k] = matrix, 1.0, 1.0
            matrix, rhs = bordered, np.append(rhs, 1.0 - low[fixed].sum())
        solution = np.linalg.lstsq(matrix, rhs, rcond=None)[0]
        size = 1.0 + np.abs(solution).max()
        if np.abs(matrix @ solution - rhs).max() > _STRICT * size * len(rhs):
            return None  # inconsistent: no stationary point with this active set
        x[free] = solution[: len(free)]
        if sum_to_one:
            multiplier = solution[-1]
    elif sum_to_one:
        if abs(low.sum() - 1) > _STRICT * (1 + np.abs(low).max()):
            return None
        # x = lower is the only feasible point; a multiplier that makes every bound's non-negative exists
        multiplier = -(q @ x + c).min()
    size = 1.0 + np.abs(x).max()
    infeasibility = max(0.0, (low[free] - x[free]).max()) if free else 0.0
    bound_multipliers = (q @ x + c)[fixed] + multiplier
    dual = max(0.0, -bound_multipliers.min()) if fixed else 0.0
    return x, max(infeasibility, dual / n) / size


def _clean(x, low, sum_to_one):
    """Remove the rounding-level infeasibility: x >= lower exactly, and sum(x) = 1 (to the last bit or two) if asked."""
    x = np.maximum(x, low)
    if sum_to_one:
        excess = x - low
        if excess.sum() > 0:
            x = low + excess * ((1 - low.sum()) / excess.sum())
    return x


# Least eigenvalue of the gradients' correlation matrix (unit diagonal): lifting the smaller ones
# keeps the problem bounded for exactly conflicting gradients and absorbs float32 rounding in K,
# and leaves a well-posed problem untouched.
EIGENVALUE_FLOOR = 1e-8
TOLERANCE = 1e-10  # on max_t |w_t^(1/alpha) (K w)_t - 1|, which is scale-free
MAX_NEWTON_STEPS = 100


def fair_weights(gram: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """The weights w > 0 with (K w)_t = w_t^(-1/alpha) for the Gram matrix K (T, T): alpha-fair
    allocation (FairGrad; alpha = 1 is the Nash bargaining solution). Tasks with a zero gradient
    (K_tt = 0) get 0; non-finite input gives NaN."""
    gram = np.asarray(gram, dtype=np.float64)
    weights = np.zeros(len(gram))
    if not np.isfinite(gram).all():
        return np.full(len(gram), np.nan)
    live = np.diag(gram) > 0
    if not live.any():
        return weights
    gram = gram[np.ix_(live, live)]
    scale = np.linalg.norm(gram)
    norms = np.sqrt(np.diag(gram))
    # in the correlation matrix (unit diagonal) the floor acts alike on every task, however
    # different the gradients' norms
    correlation = (gram + gram.T) / 2 / np.outer(norms, norms)
    values, vectors = np.linalg.eigh(correlation)
    if values.min() < EIGENVALUE_FLOOR:
        correlation = (vectors * np.maximum(values, EIGENVALUE_FLOOR)) @ vectors.T
    normalised = correlation * np.outer(norms, norms) / scale
    # if K/n v = v^(-1/alpha), then w = c v solves K w = w^(-1/alpha) for c = n^(-alpha/(1+alpha))
    weights[live] = _newton(normalised, alpha) * scale ** (-alpha / (1 + alpha))
    return weights


def _newton(gram: np.ndarray, alpha: float) -> np.ndarray:
    """Minimise f(w) = 1/2 w^T K w - sum_t h(w_t), h' = w^(-1/alpha) (h = log for alpha = 1): convex,
    since h is concave, and stationary where K w = w^(-1/alpha)."""
    power = 1.0 / alpha

    def objective(w: np.ndarray) -> float:
        barrier = np.log(w).sum() if power == 1 else (w ** (1 - power)).sum() / (1 - power)
        return 0.5 * w @ gram @ w - barrier

    w = np.diag(gram) ** (-alpha / (1 + alpha))  # the solution when the gradients are orthogonal
    for _ in range(MAX_NEWTON_STEPS):
        product = gram @ w
        if np.abs(product * w**power - 1).max() < TOLERANCE:
            break
        gradient = product - w**-power
        hessian = gram + np.diag(power * w ** (-power - 1))
        # scaled by w on both sides: the weights of tasks with very different gradient norms differ
        # by as many orders of magnitude
        step = -w * np.linalg.solve(hessian * np.outer(w, w), w * gradient)
        slope = gradient @ step  # minus the squared Newton decrement
        shrinking = step < 0
        t = min(1.0, 0.99 * float(np.min(-w[shrinking] / step[shrinking]))) if shrinking.any() else 1.0
        if -slope > 0.1:  # far from the solution: backtrack until f decreases enough
            start = objective(w)
            while t > 1e-12 and not objective(w + t * step) <= start + 1e-4 * t * slope:
                t /= 2
        elif -slope < 1e-14 or np.abs(t * step / w).max() < 1e-8:
            # near it Newton's error after a step is about the step's square; a smaller step is rounding
            return w + t * step
        w = w + t * step
    return w
