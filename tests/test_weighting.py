"""Task weighting methods against gradients differentiated by hand (the toy problem: tests/weighting_toy.py)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from baselines.config import WeightingConfig, load_config
from baselines.endoarss_family import task_losses
from baselines.models import build_model
from baselines.weighting import build_weighting
from baselines.weighting.base import EPS
from mtlbench.errors import InputError
from tests.weighting_toy import TASKS, X1, X2, TwoHeads, step, weighting


def test_an_unknown_method_is_refused_when_the_configuration_is_made():
    from baselines.weighting.registry import WEIGHTINGS

    with pytest.raises(InputError) as caught:
        WeightingConfig(name="nash")
    known = ", ".join(f'"{name}"' for name in WEIGHTINGS.names())
    assert str(caught.value) == f'weighting.name: "nash" is not one of: {known}'
    assert '"nash_mtl"' in known and '"db_mtl"' in known


def test_losses_must_name_every_task():
    model = TwoHeads()
    losses = model.losses(X1)
    with pytest.raises(ValueError, match="one value per task"):
        weighting("ew").backward({"activity": losses["activity"]}, list(model.shared.parameters()))


def test_equal_weighting_is_the_plain_sum():
    shared, heads, weights = step(weighting("ew"))
    reference = TwoHeads()
    sum(reference.losses(X1).values()).backward()
    assert shared == pytest.approx(reference.shared.weight.grad.squeeze().tolist())
    # (4, 8) + (6, 12); heads: dL_a/da = 2 a y^2 = 8, dL_s/db = 6 (b y - 1) y = 12
    assert shared == pytest.approx([10.0, 20.0])
    assert heads == pytest.approx((8.0, 12.0))
    assert weights == {"activity": 1.0, "segmentation": 1.0}


def test_uncertainty_weighting_gradients():
    method = weighting("uw")
    with torch.no_grad():
        method.log_variances.copy_(torch.tensor([0.5, -1.0]))
    shared, heads, weights = step(method)
    # dJ/ds_t = 1 - exp(-s_t) L_t: 1 - 4 e^-0.5 = -1.42612, 1 - 3 e = -7.15485
    assert method.log_variances.grad.tolist() == pytest.approx([1 - 4 * math.exp(-0.5), 1 - 3 * math.e])
    assert method.log_variances.grad.tolist() == pytest.approx([-1.4261226, -7.1548455])
    # e^-0.5 (4, 8) + e (6, 12) = (18.73581, 37.47163)
    assert shared == pytest.approx([18.7358136, 37.4716272])
    assert heads == pytest.approx((8 * math.exp(-0.5), 12 * math.e))
    assert weights == pytest.approx({"activity": math.exp(-0.5), "segmentation": math.e})
    assert [name for name, _ in method.named_parameters()] == ["log_variances"]


def test_dynamic_weight_average_by_hand():
    method = weighting("dwa", temperature=2.0)
    method.epoch_end(0, {"activity": 4.0, "segmentation": 2.0})
    assert step(method)[2] == {"activity": 1.0, "segmentation": 1.0}  # epochs 0 and 1 weigh 1
    method.epoch_end(1, {"activity": 2.0, "segmentation": 3.0})
    # r = (2/4, 3/2) = (0.5, 1.5); r / 2 = (0.25, 0.75); 2 softmax = 2 (1, e^0.5) / (1 + e^0.5) = (0.75508, 1.24492)
    shared, heads, weights = step(method)
    w_a, w_s = 2 / (1 + math.exp(0.5)), 2 * math.exp(0.5) / (1 + math.exp(0.5))
    assert [weights["activity"], weights["segmentation"]] == pytest.approx([0.7550813, 1.2449187])
    assert [weights["activity"], weights["segmentation"]] == pytest.approx([w_a, w_s])
    assert shared == pytest.approx([4 * w_a + 6 * w_s, 8 * w_a + 12 * w_s])
    assert heads == pytest.approx((8 * w_a, 12 * w_s))
    method.epoch_end(2, {"activity": 1.0, "segmentation": 3.0})
    # ratios against epoch 1, not epoch 0: r = (1/2, 3/3); r / 2 = (0.25, 0.5) -> 2 (1, e^0.25) / (1 + e^0.25)
    assert step(method)[2] == pytest.approx({"activity": 0.8756470, "segmentation": 1.1243530})


def test_db_mtl_two_steps_by_hand():
    method = weighting("db_mtl", beta=0.9)
    shared, heads, alpha = step(method, X1)
    # g = (1, 2), (2, 4); zero-started averages: m = 0.1 g = (0.1, 0.2), (0.2, 0.4)
    # norms 0.1 sqrt5, 0.2 sqrt5 -> alpha = (2, 1); shared = 2 (0.1, 0.2) + (0.2, 0.4) = (0.4, 0.8)
    assert alpha == pytest.approx({"activity": 2.0, "segmentation": 1.0})
    assert shared == pytest.approx([0.4, 0.8])
    assert heads == pytest.approx((2.0, 4.0))  # each head: the gradient of its own log loss

    shared, heads, alpha = step(method, X2)
    # g = (1.6, 0.8), (8/3, 4/3)
    # m_a = 0.9 (0.1, 0.2) + 0.1 (1.6, 0.8) = (0.25, 0.26),                    ||m_a|| = sqrt(0.1301) = 0.360694
    # m_s = 0.9 (0.2, 0.4) + 0.1 (8/3, 4/3) = (0.446667, 0.493333),            ||m_s|| = 0.665499
    # alpha = (0.665499 / 0.360694, 1) = (1.845053, 1)
    # shared = 1.845053 (0.25, 0.26) + (0.446667, 0.493333) = (0.907930, 0.973047)
    assert alpha == pytest.approx({"activity": 1.8450526, "segmentation": 1.0})
    assert shared == pytest.approx([0.9079298, 0.9730470])
    assert heads == pytest.approx((2.0, 10 / 3))


def test_db_mtl_accumulates_into_existing_gradients():
    model = TwoHeads()
    model.shared.weight.grad = torch.tensor([[1.0, -1.0]])
    model.head_activity.grad = torch.tensor(0.5)
    shared, heads, _ = step(weighting("db_mtl", beta=0.9), model=model)
    assert shared == pytest.approx([1.4, -0.2])  # (1, -1) + (0.4, 0.8)
    assert heads == pytest.approx((2.5, 4.0))


def test_db_mtl_without_beta_is_plain_max_norm_rescaling():
    _, _, alpha = step(weighting("db_mtl", beta=0.0))
    shared, _, _ = step(weighting("db_mtl", beta=0.0))
    # m = g: alpha = (2, 1); 2 (1, 2) + (2, 4) = (4, 8)
    assert shared == pytest.approx([4.0, 8.0])
    assert alpha == pytest.approx({"activity": 2.0, "segmentation": 1.0})


def test_stch_warm_up_then_smooth_maximum():
    method = weighting("stch", warmup_epochs=2, mu=1.0)
    shared, heads, weights = step(method)
    assert shared == pytest.approx([3.0, 6.0])  # gradient of sum log L: (1, 2) + (2, 4)
    assert heads == pytest.approx((2.0, 4.0))
    assert weights == {"activity": 1.0, "segmentation": 1.0}

    method.epoch_end(0, {"activity": 9.0, "segmentation": 9.0})
    assert step(method)[0] == pytest.approx([3.0, 6.0])  # still warming up
    method.epoch_end(1, {"activity": 2.0, "segmentation": 6.0})  # last warm-up epoch: nadir z = (2, 6)
    shared, heads, weights = step(method)
    # log(L / z) = (log 2, log 0.5); p = softmax = (2, 0.5) / 2.5 = (0.8, 0.2)
    # gradient = 0.8 (1, 2) + 0.2 (2, 4) = (1.2, 2.4); heads 0.8 * 2, 0.2 * 4
    assert weights == pytest.approx({"activity": 0.8, "segmentation": 0.2})
    assert shared == pytest.approx([1.2, 2.4])
    assert heads == pytest.approx((1.6, 0.8))
    method.epoch_end(2, {"activity": 100.0, "segmentation": 100.0})  # the nadir stays fixed
    assert step(method)[0] == pytest.approx([1.2, 2.4])


@pytest.mark.parametrize(
    ("mu", "expected_weights", "expected_shared"),
    [
        # log(L / z) / 0.5 = (2 log 2, -2 log 2): p = (4, 1/4) / 4.25 = (16/17, 1/17); 16/17 (1, 2) + 1/17 (2, 4)
        (0.5, (16 / 17, 1 / 17), (18 / 17, 36 / 17)),
        # mu -> 0: the maximum, task activity alone: (1, 2)
        (1e-3, (1.0, 0.0), (1.0, 2.0)),
    ],
)
def test_stch_smoothing(mu, expected_weights, expected_shared):
    method = weighting("stch", warmup_epochs=1, mu=mu)
    method.epoch_end(0, {"activity": 2.0, "segmentation": 6.0})
    shared, _, weights = step(method)
    assert [weights["activity"], weights["segmentation"]] == pytest.approx(expected_weights, abs=1e-6)
    assert shared == pytest.approx(expected_shared)


def test_stch_settings_without_a_nadir_are_refused():
    with pytest.raises(InputError, match="weighting.warmup_epochs: must be at least 1, got 0"):
        WeightingConfig(name="stch", warmup_epochs=0)
    with pytest.raises(InputError, match="weighting.mu: must be above 0, got 0.0"):
        WeightingConfig(name="stch", mu=0.0)


def prepare_db_mtl(method):
    step(method, X1)


def prepare_stch(method):
    method.epoch_end(0, {"activity": 2.0, "segmentation": 6.0})


def prepare_dwa(method):
    method.epoch_end(0, {"activity": 4.0, "segmentation": 2.0})
    method.epoch_end(1, {"activity": 2.0, "segmentation": 3.0})


def prepare_uw(method):
    with torch.no_grad():
        method.log_variances.copy_(torch.tensor([0.5, -1.0]))


@pytest.mark.parametrize(
    ("name", "prepare"),
    [("db_mtl", prepare_db_mtl), ("stch", prepare_stch), ("dwa", prepare_dwa), ("uw", prepare_uw)],
)
def test_state_dict_round_trip_gives_the_same_next_gradient(name, prepare):
    settings = {"warmup_epochs": 1} if name == "stch" else {}
    trained = weighting(name, **settings)
    prepare(trained)
    resumed = weighting(name, **settings)
    resumed.load_state_dict(trained.state_dict())
    fresh = weighting(name, **settings)

    def next_step(method):
        shared, heads, weights = step(method, X2)
        return [*shared, *heads, *(weights[task] for task in TASKS)]

    expected = next_step(trained)
    assert next_step(resumed) == pytest.approx(expected)
    assert next_step(fresh)[:2] != pytest.approx(expected[:2])  # the state is what made the difference
    for method in (trained, resumed):  # and the epoch history (DWA's previous epoch) carries on
        method.epoch_end(2, {"activity": 1.0, "segmentation": 3.0})
    assert next_step(resumed) == pytest.approx(next_step(trained))


def test_db_mtl_state_follows_the_shared_size():
    method = weighting("db_mtl")
    assert method.state_dict()["gradient_ema"].shape == (2, 0)
    step(method)
    assert method.state_dict()["gradient_ema"].flatten().tolist() == pytest.approx([0.1, 0.2, 0.2, 0.4])
    model = TwoHeads()
    with pytest.raises(ValueError, match="changed size"):
        method.backward(model.losses(X1), [model.shared.weight, model.head_activity])


@pytest.mark.parametrize(
    ("name", "expected_shared", "expected_heads"),
    [
        ("ew", (10.0, 20.0), (8.0, 12.0)),
        ("uw", (10.0, 20.0), (8.0, 12.0)),  # s = 0: weights 1
        ("dwa", (10.0, 20.0), (8.0, 12.0)),
        ("stch", (3.0, 6.0), (2.0, 4.0)),  # warm-up: sum of log losses
        ("db_mtl", (3.0, 6.0), (2.0, 4.0)),  # nothing to balance: sum of log losses
    ],
)
def test_empty_shared_is_a_plain_backward(name, expected_shared, expected_heads):
    shared, heads, weights = step(weighting(name), with_shared=False)
    assert shared == pytest.approx(expected_shared)
    assert heads == pytest.approx(expected_heads)
    assert weights == {"activity": 1.0, "segmentation": 1.0}


@pytest.mark.parametrize("name", ["ew", "uw", "dwa", "stch", "db_mtl"])
def test_single_task(name):
    method = weighting(name, tasks=("segmentation",), warmup_epochs=1)
    model = TwoHeads()
    loss = model.losses(X1)["segmentation"]
    weights = method.backward({"segmentation": loss}, list(model.shared.parameters()))
    method.epoch_end(0, {"segmentation": 2.0})
    assert set(weights) == {"segmentation"}
    # EW, UW, DWA: dL/dw = (6, 12); STCH: d log L / dw = (2, 4); DB-MTL: its first average 0.1 (2, 4)
    expected = {"ew": (6.0, 12.0), "uw": (6.0, 12.0), "dwa": (6.0, 12.0), "stch": (2.0, 4.0), "db_mtl": (0.2, 0.4)}[name]
    assert model.shared.weight.grad.squeeze().tolist() == pytest.approx(expected)


# DB-MTL's one backward pass per task against the three-pass formulation it replaced


def three_pass_db_mtl(method, losses, shared):
    """DB-MTL's backward as it was: per-task gradients of the shared parameters from the stacked log
    losses, flattened and balanced, then a backward of their sum for every other parameter, whose
    shared .grad is replaced."""
    log_losses = torch.log(method.stack_losses(losses) + EPS)
    if not shared:
        log_losses.sum().backward()
        return method.per_task(torch.ones_like(log_losses))
    task_gradients = torch.stack([
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(log_loss, shared, retain_graph=True, materialize_grads=True)])
        for log_loss in log_losses
    ])
    if method.gradient_ema.shape[1] == 0:
        method.gradient_ema = torch.zeros_like(task_gradients)
    method.gradient_ema.lerp_(task_gradients.to(method.gradient_ema.dtype), 1 - method.config.beta)
    norms = method.gradient_ema.norm(dim=1)
    alpha = norms.max() / (norms + EPS)
    shared_gradient = alpha @ method.gradient_ema
    accumulated = [p.grad for p in shared]
    for p in shared:
        p.grad = None
    log_losses.sum().backward()
    for p, before, gradient in zip(shared, accumulated, shared_gradient.split([p.numel() for p in shared])):
        gradient = gradient.view_as(p).to(p.dtype)
        p.grad = gradient if before is None else before + gradient
    return method.per_task(alpha)


def tiny_endoarss(settings: list[str]):
    """The endoarss preset on a 2-block ViT at 28 px, with B and LayerScale away from their initial
    zeros and 1e-5 so that every trainable parameter gets a non-trivial gradient."""
    tiny = ["model.encoder.depth=2", "model.encoder.embed_dim=96", "model.encoder.num_heads=3", "model.encoder.sma.channels=16", "model.head_channels=16"]
    config = load_config("endoarss", ["model.encoder.variant=vits14", *tiny, *settings])
    torch.manual_seed(0)
    model = build_model(config.model, TASKS, 5, 3, (28, 28))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name or name.endswith(".gamma"):
                parameter.normal_()
    return model, config.weighting


@pytest.mark.parametrize(
    "settings",
    [
        [],  # DV-LoRA and SMA on a frozen backbone
        ["model.encoder.adapter.tesla=true"],  # task-owned B's in the encoder
        ["model.encoder.freeze=false", "model.encoder.adapter.kind=none"],  # full fine-tuning
        ["model.architecture=single_task"],  # nothing shared
    ],
)
def test_db_mtl_gives_the_three_pass_gradients_exactly(settings):
    model, config = tiny_endoarss(settings)
    reference_model = copy.deepcopy(model)
    method, reference_method = build_weighting(config, TASKS), build_weighting(config, TASKS)
    images = torch.rand(2, 3, 28, 28)
    batch = {"image": images, "mask": torch.randint(0, 5, (2, 28, 28)), "activity": torch.tensor([0, 2])}

    def losses_of(network):
        torch.manual_seed(1)  # the heads' dropout draws the same masks for both models
        return task_losses(network(images), batch, "cpu")

    for _ in range(2):  # the second step accumulates onto the first's .grad and uses the averages
        alpha = method.backward(losses_of(model), model.shared_parameters())
        assert alpha == three_pass_db_mtl(reference_method, losses_of(reference_model), reference_model.shared_parameters())
        for (name, parameter), reference in zip(model.named_parameters(), reference_model.parameters()):
            assert (parameter.grad is None) == (reference.grad is None), name
            if parameter.grad is not None:
                assert torch.equal(parameter.grad, reference.grad), name
                assert parameter.grad.stride() == reference.grad.stride(), name
    assert torch.equal(method.gradient_ema, reference_method.gradient_ema)
