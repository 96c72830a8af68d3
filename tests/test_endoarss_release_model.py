"""`endoarss-release`: each module against the release's definition, re-derived here independently.

The references below are written from the release's published definitions (its MobileViT block,
EMA, DeepLab head, STCH, LibMTL's Δp) with plain loops and functional ops, not by calling the
modules under test; expected numbers that are small enough are computed by hand in comments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.config import EncoderConfig, SMAConfig, WeightingConfig, load_config
from baselines.models import build_model
from baselines.models.dinov2 import build_dinov2_encoder
from baselines.models.heads import ASPPHead
from baselines.models.hps import HardParameterSharing
from baselines.models.sma import InputSMA, from_patch_planes, to_patch_planes
from baselines.selection import selection_score
from baselines.weighting import build_weighting
from baselines.weights_formats import inspect
from mtlbench.errors import InputError
from tests.test_dinov2 import official_state_dict, save

TASKS = ("activity", "segmentation")


# -- SMA in the release's layout -------------------------------------------------------------

def test_patch_planes_follow_the_release_unfolding():
    """'bs dim (nh ph) (nw pw) -> bs (ph pw) (nh nw) dim', element by element."""
    p, d, nh, nw = 2, 3, 2, 3
    x = torch.arange(1 * d * nh * p * nw * p, dtype=torch.float32).reshape(1, d, nh * p, nw * p)
    planes = to_patch_planes(x, p)
    assert planes.shape == (1, p * p, nh * nw, d)
    for ph in range(p):
        for pw in range(p):
            for i in range(nh):
                for j in range(nw):
                    for c in range(d):
                        assert planes[0, ph * p + pw, i * nw + j, c] == x[0, c, i * p + ph, j * p + pw]
    assert torch.equal(from_patch_planes(planes, p, nh * p, nw * p), x)


def reference_ema(x: torch.Tensor, conv1x1: nn.Conv2d, conv3x3: nn.Conv2d, gn: nn.GroupNorm, groups: int) -> torch.Tensor:
    """EMA as the release defines it (Ouyang et al.): pool along h and w, shared 1x1 conv, sigmoid
    gates, GroupNorm; a 3x3 branch; each branch's pooled softmaxed descriptor times the other's map."""
    b, c, h, w = x.shape
    g = x.reshape(b * groups, c // groups, h, w)
    x_h = g.mean(dim=3, keepdim=True)  # (n, c', h, 1)
    x_w = g.mean(dim=2, keepdim=True).permute(0, 1, 3, 2)  # (n, c', w, 1)
    hw = conv1x1(torch.cat([x_h, x_w], dim=2))
    gate_h, gate_w = hw[:, :, :h], hw[:, :, h:]
    x1 = gn(g * gate_h.sigmoid() * gate_w.permute(0, 1, 3, 2).sigmoid())
    x2 = conv3x3(g)
    descriptor_1 = torch.softmax(x1.mean(dim=(2, 3)), dim=-1)[:, None, :]  # (n, 1, c')
    descriptor_2 = torch.softmax(x2.mean(dim=(2, 3)), dim=-1)[:, None, :]
    weights = descriptor_1 @ x2.reshape(b * groups, c // groups, h * w) + descriptor_2 @ x1.reshape(b * groups, c // groups, h * w)
    return (g * weights.reshape(b * groups, 1, h, w).sigmoid()).reshape(b, c, h, w)


def reference_mobile_block(images: torch.Tensor, block: InputSMA, dim: int, p: int) -> torch.Tensor:
    """The release's MobileViTAttention forward with the block's weights: conv1, conv2, unfold into
    p x p patches by explicit indexing, EMA (channels p*p, factor 1), fold, conv3, cat, conv4."""
    y = block.expand(block.local(images))
    b, _, height, width = y.shape
    nh, nw = height // p, width // p
    planes = torch.empty(b, p * p, nh * nw, dim)
    for ph in range(p):
        for pw in range(p):
            planes[:, ph * p + pw] = y[:, :, ph::p, pw::p].permute(0, 2, 3, 1).reshape(b, nh * nw, dim)
    attention = block.attention
    planes = reference_ema(planes, attention.axis_conv, attention.local_conv, attention.norm, groups=1)
    folded = torch.empty_like(y)
    for ph in range(p):
        for pw in range(p):
            folded[:, :, ph::p, pw::p] = planes[:, ph * p + pw].reshape(b, nh, nw, dim).permute(0, 3, 1, 2)
    return block.fuse(torch.cat([images, block.project(folded)], dim=1))


def test_input_sma_in_the_patches_layout_equals_the_release_block():
    torch.manual_seed(0)
    block = InputSMA(channels=16, groups=1, patch_size=7)
    assert block.attention.norm.num_groups == 49 and block.attention.axis_conv.in_channels == 49
    images = torch.rand(2, 3, 14, 21)
    with torch.no_grad():
        torch.testing.assert_close(block(images), reference_mobile_block(images, block, dim=16, p=7), atol=1e-5, rtol=1e-5)


def test_the_default_layout_differs_from_the_release():
    """Same convolutions, EMA over the whole 49-channel map instead of the unfolded planes."""
    torch.manual_seed(0)
    release = InputSMA(channels=49, groups=1, patch_size=7)
    whole_map = InputSMA(channels=49, groups=1)
    whole_map.load_state_dict(release.state_dict())
    images = torch.rand(1, 3, 14, 14)
    with torch.no_grad():
        assert not torch.allclose(release(images), whole_map(images), atol=1e-4)


def test_release_sma_is_frozen_and_patch_sides_are_checked():
    config = EncoderConfig(variant="vits14", depth=1, embed_dim=48, num_heads=2,
                           sma=SMAConfig(placement="input", layout="patches", groups=1, channels=16, trainable=False))
    encoder = build_dinov2_encoder(config, TASKS, (56, 56))
    parameters = list(encoder.input_sma.parameters())
    assert parameters and not any(parameter.requires_grad for parameter in parameters)
    five = EncoderConfig(variant="vits14", depth=1, embed_dim=48, num_heads=2, sma=SMAConfig(placement="input", layout="patches", patch_size=5, groups=1))
    with pytest.raises(InputError, match="model.encoder.sma.patch_size: the patches layout needs input sides divisible by 5, got 56x56"):
        build_dinov2_encoder(five, TASKS, (56, 56))
    with pytest.raises(InputError, match="model.encoder.sma.layout: .*set placement to input"):
        SMAConfig(placement="tokens", layout="patches")


# -- heads -------------------------------------------------------------------------------------

def reference_deeplab_head(features: torch.Tensor, head: ASPPHead, size) -> torch.Tensor:
    """The release's DeepLabHead (aspp.py) with `head`'s weights, BatchNorm in the pooling branch,
    followed by the release's upsampling (bilinear, align_corners=True)."""
    def bn(x, norm):
        return F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias, training=False, eps=norm.eps)

    def conv_bn_relu(x, sequential):
        conv, norm = sequential[0], sequential[1]
        return F.relu(bn(F.conv2d(x, conv.weight, None, padding=conv.padding, dilation=conv.dilation), norm))

    branches = [conv_bn_relu(features, branch) for branch in head.branches[:-1]]
    pooling = head.branches[-1].conv
    pooled = F.relu(bn(F.conv2d(features.mean(dim=(2, 3), keepdim=True), pooling[0].weight), pooling[1]))
    branches.append(F.interpolate(pooled, size=features.shape[-2:], mode="bilinear", align_corners=False))
    x = conv_bn_relu(torch.cat(branches, dim=1), head.project[0])
    x = conv_bn_relu(x, head.refine)
    logits = F.conv2d(x, head.classifier.weight, head.classifier.bias)
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)


def randomise_batchnorm(module: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for norm in module.modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.running_mean.copy_(torch.randn(norm.num_features, generator=generator) * 0.1)
            norm.running_var.copy_(torch.rand(norm.num_features, generator=generator) + 0.5)
            norm.weight.data.copy_(torch.rand(norm.num_features, generator=generator) + 0.5)
            norm.bias.data.copy_(torch.randn(norm.num_features, generator=generator) * 0.1)


def test_aspp_head_with_pooling_batchnorm_equals_the_release_head():
    torch.manual_seed(0)
    head = ASPPHead(8, 5, channels=6, rates=(1, 2, 3), pooling_batchnorm=True, align_corners=True).eval()
    randomise_batchnorm(head, seed=1)
    features = torch.randn(2, 8, 4, 12)
    with torch.no_grad():
        torch.testing.assert_close(head(features, (9, 9)), reference_deeplab_head(features, head, (9, 9)), atol=1e-5, rtol=1e-5)


def test_pooling_batchnorm_folds_into_the_default_branch_in_eval_mode():
    """BN(W x) = (gamma / sigma) W x + (beta - gamma mu / sigma): the default branch's biased conv."""
    torch.manual_seed(0)
    release = ASPPHead(8, 5, channels=6, rates=(1, 2), pooling_batchnorm=True).eval()
    randomise_batchnorm(release, seed=2)
    default = ASPPHead(8, 5, channels=6, rates=(1, 2)).eval()
    release_state = release.state_dict()
    folded = {key: value for key, value in release_state.items() if not key.startswith("branches.3.")}
    conv, norm = release.branches[3].conv
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    folded["branches.3.conv.weight"] = conv.weight * scale[:, None, None, None]
    folded["branches.3.conv.bias"] = norm.bias - norm.running_mean * scale
    default.load_state_dict(folded)
    features = torch.randn(3, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(default(features, (5, 5)), release(features, (5, 5)), atol=1e-5, rtol=1e-5)


def test_release_preset_heads_read_256_token_channels():
    config = load_config("endoarss-release", ["model.encoder.variant=vits14", "model.encoder.depth=1"])
    model = build_model(config.model, TASKS, 10, 12, (224, 224))
    assert model.encoder.out_channels == 256
    assert model.heads["activity"].conv[0].in_channels == 256
    assert model.heads["segmentation"].branches[0][0].in_channels == 256


# -- the input path ------------------------------------------------------------------------------

def bilinear_align_corners(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of (H, W) where output pixel i samples input coordinate i * (in - 1) / (out - 1)."""
    in_h, in_w = image.shape
    out = np.empty((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            y, x = i * (in_h - 1) / (out_h - 1), j * (in_w - 1) / (out_w - 1)
            y0, x0 = min(int(y), in_h - 2), min(int(x), in_w - 2)
            dy, dx = y - y0, x - x0
            out[i, j] = ((1 - dy) * (1 - dx) * image[y0, x0] + (1 - dy) * dx * image[y0, x0 + 1]
                         + dy * (1 - dx) * image[y0 + 1, x0] + dy * dx * image[y0 + 1, x0 + 1])
    return out


class RecordingEncoder(nn.Module):
    task_specific = False

    def forward(self, images):
        self.seen = images.clone()
        return torch.ones(images.shape[0], 4, 2, 2)


def test_the_model_resizes_loaded_frames_to_its_input_size_with_align_corners():
    """244 -> 224 in the release; here 9 -> 7, checked against the sampling formula by hand."""
    encoder = RecordingEncoder()
    head = ASPPHead(4, 3, channels=4, rates=(1,), align_corners=True).eval()
    model = HardParameterSharing(encoder, nn.ModuleDict({"segmentation": head}), input_size=(7, 7), align_corners=True).eval()
    images = torch.rand(1, 3, 9, 9, dtype=torch.float64).float()
    with torch.no_grad():
        logits = model(images)["segmentation"]
    assert logits.shape == (1, 3, 9, 9)  # back at the loaded size, where the release computes its loss
    expected = bilinear_align_corners(images[0, 0].double().numpy(), 7, 7)
    np.testing.assert_allclose(encoder.seen[0, 0].numpy(), expected, atol=1e-6)


def test_frames_at_the_input_size_pass_unchanged():
    encoder = RecordingEncoder()
    model = HardParameterSharing(encoder, nn.ModuleDict({"segmentation": ASPPHead(4, 3, channels=4, rates=(1,))}), input_size=(7, 7))
    images = torch.rand(1, 3, 7, 7)
    model.eval()(images)
    assert torch.equal(encoder.seen, images)


# -- STCH as released ---------------------------------------------------------------------------

class ReleaseSTCH:
    """LibMTL's STCH as the release runs it: sum of log losses while epoch < w; in epoch w the
    same, averaging the raw losses; afterwards mu * log sum exp((log(L / z + 1e-20) - max) / mu) * T."""

    def __init__(self, warmup_epoch: int, mu: float = 1.0):
        self.warmup_epoch, self.mu = warmup_epoch, mu
        self.total, self.count, self.nadir = 0.0, 0, None

    def objective(self, losses: torch.Tensor, epoch: int) -> torch.Tensor:
        if epoch <= self.warmup_epoch:
            if epoch == self.warmup_epoch:
                self.total, self.count = self.total + losses.detach(), self.count + 1
            return torch.log(losses + 1e-20).sum()
        if self.nadir is None:
            self.nadir = self.total / self.count
        logs = torch.log(losses / self.nadir + 1e-20)
        return self.mu * torch.log(torch.exp((logs - logs.detach().max()) / self.mu).sum()) * len(losses)


def test_stch_release_options_give_the_release_gradients_epoch_by_epoch():
    """Two losses of a 2-parameter model through 8 epochs of 3 steps: release warmup_epoch=4 is
    warmup_epochs=5 with scale_by_task_count."""
    ours = build_weighting(WeightingConfig(name="stch", warmup_epochs=5, scale_by_task_count=True), ("a", "b"))
    release = ReleaseSTCH(warmup_epoch=4)
    generator = torch.Generator().manual_seed(0)
    for epoch in range(8):
        sums = {"a": 0.0, "b": 0.0}
        for _ in range(3):
            theta = torch.rand(2, generator=generator) + 0.5
            mine, theirs = theta.clone().requires_grad_(), theta.clone().requires_grad_()
            ours.backward({"a": (mine ** 2).sum(), "b": (mine[0] * 3 + mine[1]).abs()}, [])
            release.objective(torch.stack([(theirs ** 2).sum(), (theirs[0] * 3 + theirs[1]).abs()]), epoch).backward()
            torch.testing.assert_close(mine.grad, theirs.grad, atol=1e-6, rtol=1e-6)
            sums["a"] += (theta ** 2).sum().item()
            sums["b"] += (theta[0] * 3 + theta[1]).abs().item()
        ours.epoch_end(epoch, {task: total / 3 for task, total in sums.items()})
        assert ours.warming_up == (epoch < 4)


def test_stch_task_count_factor_by_hand():
    """Losses (2, 0.5), nadir (1, 1), mu 1: objective 2 log(2 + 0.5) = 1.8326; weights 2 * (0.8, 0.2)."""
    method = build_weighting(WeightingConfig(name="stch", warmup_epochs=1, scale_by_task_count=True), ("a", "b"))
    method.epoch_end(0, {"a": 1.0, "b": 1.0})
    objective, weights = method.combine(torch.tensor([2.0, 0.5]))
    assert objective.item() == pytest.approx(2 * math.log(2.5), abs=1e-6)
    assert weights.tolist() == pytest.approx([1.6, 0.4], abs=1e-6)


# -- checkpoint selection -------------------------------------------------------------------------

def test_release_delta_p_by_hand():
    """activity (0.6 - 0.5) / 0.5 = 0.2; segmentation ((0.3 - 0.4) / 0.4 + (0.9 - 0.8) / 0.8) / 2
    = -0.0625; Δp = (0.2 - 0.0625) / 2 = 0.06875. The flat relative mean of the same three
    changes is (0.2 - 0.25 + 0.125) / 3 = 0.025."""
    reference = {"activity.accuracy": 0.5, "segmentation.miou": 0.4, "segmentation.pixel_accuracy": 0.8, "activity.macro_f1": 0.1}
    values = {"activity.accuracy": 0.6, "segmentation.miou": 0.3, "segmentation.pixel_accuracy": 0.9, "activity.macro_f1": 0.9}
    assert selection_score(values, reference, "release_delta_p", ()) == pytest.approx(0.06875)
    keys = ("activity.accuracy", "segmentation.miou", "segmentation.pixel_accuracy")
    assert selection_score(values, reference, "relative", keys) == pytest.approx(0.025)
    one_task = {key: value for key, value in values.items() if key.startswith("segmentation")}
    assert selection_score(one_task, reference, "release_delta_p", ()) == pytest.approx(-0.0625)


# -- Depth Anything weights ------------------------------------------------------------------------

def depth_anything_file(tmp_path, extra: dict | None = None, drop: str | None = None):
    encoder = official_state_dict(depth=2, dim=48)
    state = {f"pretrained.{key}": value for key, value in encoder.items() if key != drop}
    state["depth_head.projects.0.weight"] = torch.zeros(4, 48, 1, 1)
    state["depth_head.scratch.output_conv2.2.bias"] = torch.zeros(1)
    state.update(extra or {})
    return encoder, save(state, tmp_path / "depth_anything_vits14.pth")


def test_depth_anything_files_load_their_encoder_and_report_the_depth_head(tmp_path):
    encoder_state, path = depth_anything_file(tmp_path)
    config = EncoderConfig(variant="vits14", depth=2, embed_dim=48, num_heads=2, weights=str(path))
    encoder = build_dinov2_encoder(config, TASKS, (28, 28))
    loaded = encoder.vit.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in encoder_state.items())
    assert encoder.loading_report == {
        "format": "depth-anything", "ignored": ["depth_head.projects.0.weight", "depth_head.scratch.output_conv2.2.bias"],
    }
    report = inspect(path)
    assert report["format"] == "depth-anything" and report["loads_exactly"]
    assert report["architecture"].startswith("DINOv2 custom (depth 2, dim 48")
    assert report["ignored"] == encoder.loading_report["ignored"]
    with pytest.raises(InputError, match="not a dinov2 file: it reads as depth-anything"):
        inspect(path, weights_format="dinov2")


def test_depth_anything_encoder_part_is_checked_strictly(tmp_path):
    _, missing = depth_anything_file(tmp_path, drop="blocks.1.ls2.gamma")
    config = EncoderConfig(variant="vits14", depth=2, embed_dim=48, num_heads=2, weights=str(missing))
    with pytest.raises(InputError, match="missing.*blocks.1.ls2.gamma"):
        build_dinov2_encoder(config, TASKS, (28, 28))
    (tmp_path / "other").mkdir()
    _, foreign = depth_anything_file(tmp_path / "other", extra={"optimizer.step": torch.zeros(1)})
    with pytest.raises(InputError, match=r"keys outside pretrained.\* and depth_head.\*: optimizer.step"):
        build_dinov2_encoder(EncoderConfig(variant="vits14", depth=2, embed_dim=48, num_heads=2, weights=str(foreign)), TASKS, (28, 28))
