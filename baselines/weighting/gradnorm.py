"""GradNorm (Chen, Badrinarayanan, Lee and Rabinovich, "GradNorm: Gradient Normalization for Adaptive
Loss Balancing in Deep Multitask Networks", ICML 2018).

Task t's objective is w_t L_t, with learnable weights w_t > 0 that sum to T (all 1 at the
start). Each step, with g_t the gradient of L_t on the shared parameters:
- G_t = ||w_t g_t||, the weighted gradient's norm, and Gbar = mean_t G_t;
- the relative inverse training rate r_t = Lt_t / mean_s Lt_s, Lt_t = L_t / L_t(0), where L_t(0) is
  the task's loss at the first step (a buffer, set then): a task that has trained less has r_t > 1;
- the GradNorm loss L_grad = sum_t |G_t - Gbar r_t^alpha|, its targets Gbar r_t^alpha held
  constant, is differentiated with respect to the weights only, so a task whose gradient norm is
  below its target gains weight;
- the shared parameters get sum_t w_t g_t, and each task-specific parameter the gradient of the
  sum of the objectives w_t L_t: the paper's backward of sum_t w_t L_t, the weights of the step
  (before the optimiser moves them).
The weights are w = T softmax(s) of learnable logits s (0 at the start), an nn.Parameter of the
method that the run's optimiser trains with dL_grad/ds (which this method writes into s.grad),
like UW's log-variances; the softmax keeps them positive and summing to T at every step, where the
paper renormalises them after each update. The run's weight decay applies to s, pulling the
weights weakly towards equality. `backward` reports w.

Hyperparameter: `gradnorm_alpha` (1.5, the paper's value for NYUv2 and LibMTL's default), the
strength of the restoring force towards equal training rates (0: equal gradient norms).

The norms are taken over all the shared parameters (or, with weighting.gradients=representation,
of the gradient of the cut shared representation), not of the last shared layer the paper
uses: the per-task gradients of all shared parameters are computed anyway for the update, and
which layer is "last" is not well defined for every architecture here (adapters in a frozen
backbone, task-specific encoder blocks). Nothing is kept over the gradient vector across steps,
so the representation's gradients can be balanced as well.

Under DistributedDataParallel the logits' gradients are averaged over the ranks with the others,
so every rank keeps the same weights; each rank's L_t(0) is its own first batch's losses.

Differences from LibMTL's GradNorm: LibMTL trains the first epoch with equal weights and takes
L_t(0) as that epoch's mean training loss; here GradNorm acts from the first step with L_t(0) the
first step's loss, as in the paper. LibMTL gives the task-specific parameters the unweighted sum
of the task gradients; here they get w_t times task t's, as in the paper. On the representation,
LibMTL sums each task's gradient over the batch before taking its norm; here the norm is of the
whole gradient. The parameterisation w = T softmax(s) trained by the run's optimiser, and the
norms over all shared parameters, are LibMTL's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from baselines.config import WeightingConfig
from baselines.weighting.base import EPS, PARAMETERS, REPRESENTATION, GradientWeighting
from baselines.weighting.gradients import accumulate_gradient
from baselines.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("gradnorm")
class GradNorm(GradientWeighting):
    GRADIENTS = (PARAMETERS, REPRESENTATION)
    SUMMARY = "GradNorm, learned weights that equalise the tasks' gradient norms and training rates (Chen et al., ICML 2018)"

    def __init__(self, tasks: tuple[str, ...], config: WeightingConfig):
        super().__init__(tasks, config)
        self.logits = torch.nn.Parameter(torch.zeros(len(self.tasks)))
        # NaN until the first step: doubles as the "not set yet" flag
        self.register_buffer("initial_losses", torch.full((len(self.tasks),), float("nan")))

    def task_weights(self) -> Tensor:
        return len(self.tasks) * torch.softmax(self.logits, dim=0)

    def backward(self, losses, shared, representation=None) -> dict[str, float]:
        # where() rather than an `if`, which would wait for the device every step
        raw = self.stack_losses(losses).detach().to(self.initial_losses.dtype)
        self.initial_losses.copy_(torch.where(self.initial_losses.isnan(), raw, self.initial_losses))
        weights = self.task_weights().detach()
        # the base class differentiates each task's objective w_t L_t, so its gradient rows are
        # w_t g_t and the heads get the weighted sum
        weighted = {task: weight * loss for task, weight, loss in zip(self.tasks, weights, self.in_task_order(losses))}
        super().backward(weighted, shared, representation)
        return self.per_task(weights)

    def aggregate(self, gradients: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        """`gradients` are those of w_t L_t and `losses` the values w_t L_t, with the current w."""
        with torch.enable_grad():
            weights = self.task_weights()
            held = weights.detach().clamp_min(torch.finfo(weights.dtype).tiny)
            norms = gradients.norm(dim=1).to(weights.dtype)  # G_t
            unit_norms = norms / held  # ||g_t||
            loss_ratios = (losses.to(weights.dtype) / held) / (self.initial_losses + EPS)  # L_t / L_t(0)
            rates = loss_ratios / (loss_ratios.mean() + EPS)
            targets = norms.mean() * rates**self.config.gradnorm_alpha
            gradnorm_loss = (weights * unit_norms - targets).abs().sum()
            (logits_gradient,) = torch.autograd.grad(gradnorm_loss, self.logits)
        accumulate_gradient(self.logits, logits_gradient)
        return gradients.sum(dim=0), weights.detach()
