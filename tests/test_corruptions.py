"""Image corruptions: geometry, determinism, monotone degradation, the release protocol, seeds."""

from __future__ import annotations

import json
from itertools import pairwise

import numpy as np
from PIL import Image
import pytest
from scipy import ndimage

from mtlbench.corruptions import (
    DEFAULT_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    SEVERITIES,
    corrupt,
    describe_parameters,
    output_seed,
)
from mtlbench.corruptions.blur import _disk_mean
from mtlbench.corruptions.hsv import hsv_to_rgb, rgb_to_hsv
from mtlbench.corruptions.registry import CORRUPTIONS
from mtlbench.corruptions.sheet import contact_sheet
from mtlbench.demo.scene import tissue_texture
from mtlbench.errors import InputError

ALL = DEFAULT_CORRUPTIONS + EXTRA_CORRUPTIONS
RANDOM = {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur", "spatter", "bleeding", "smoke"}
ODD_SIZES = [(96, 150), (200, 256)]


def tissue_image(height: int, width: int, seed: int = 3) -> np.ndarray:
    """Mottled tissue with thin vessels and grain: detail at every scale for blur and JPEG to remove."""
    rng = np.random.default_rng(seed)
    texture = tissue_texture(rng, height, width, dark=(0.45, 0.12, 0.10), light=(0.88, 0.52, 0.45), vessel=(0.55, 0.05, 0.08))
    return np.rint(np.clip(texture, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tissue() -> np.ndarray:
    # The degradation tests run every corruption at every severity on this 256x320 frame, which is
    # also the speed sanity check: a pathologically slow corruption shows in the suite's time.
    return tissue_image(256, 320)


def psnr(clean: np.ndarray, corrupted: np.ndarray) -> float:
    mse = np.mean((clean.astype(np.float64) - corrupted) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_the_registry_holds_exactly_the_default_and_extra_sets():
    assert CORRUPTIONS.names() == tuple(sorted(ALL)) and len(set(ALL)) == 17


@pytest.mark.parametrize("size", ODD_SIZES)
@pytest.mark.parametrize("name", ALL)
def test_output_has_the_input_shape_and_dtype(name, size):
    image = tissue_image(*size)
    for severity in SEVERITIES:
        corrupted = corrupt(image, name, severity, seed=1)
        assert corrupted.shape == image.shape and corrupted.dtype == np.uint8


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_bytes_and_only_random_corruptions_depend_on_the_seed(name):
    image = tissue_image(96, 150)
    first = corrupt(image, name, 3, seed=11)
    assert corrupt(image, name, 3, seed=11).tobytes() == first.tobytes()
    assert (corrupt(image, name, 3, seed=12).tobytes() != first.tobytes()) == (name in RANDOM)


@pytest.mark.parametrize("name", [name for name in ALL if name != "saturate"])
def test_each_severity_degrades_more_than_the_last(name, tissue):
    scores = [psnr(tissue, corrupt(tissue, name, severity, seed=5)) for severity in SEVERITIES]
    assert all(lower < higher for higher, lower in pairwise(scores)), scores


def test_saturate_changes_the_image_at_every_severity(tissue):
    # Severities 1-2 take colour away (S * 0.3, S * 0.1) and 3-5 add it (S * 2, S * 5 + 0.1,
    # S * 20 + 0.2): two directions, so the distance to the clean image is ordered within each but
    # not across the switch (almost grey can be closer or farther than doubled saturation). Adding
    # only non-increases it: saturation stops at 1, and on this already fairly saturated tissue
    # S * 5 + 0.1 reaches 1 everywhere, so severities 4 and 5 coincide.
    scores = [psnr(tissue, corrupt(tissue, "saturate", severity, seed=5)) for severity in SEVERITIES]
    assert all(score < float("inf") for score in scores), scores
    assert scores[0] > scores[1] and scores[2] > scores[3] >= scores[4], scores


@pytest.mark.parametrize("name", ALL)
def test_release_protocol_keeps_the_shape(name):
    image = tissue_image(96, 150)
    assert corrupt(image, name, 5, seed=2, release_compat=True).shape == image.shape


@pytest.mark.parametrize("name", ALL)
def test_both_protocols_agree_on_a_256_px_square(name):
    image = tissue_image(256, 256)
    assert np.array_equal(corrupt(image, name, 4, seed=2), corrupt(image, name, 4, seed=2, release_compat=True))


@pytest.mark.parametrize("size", ODD_SIZES)
def test_pixelate_keeps_the_size_the_release_loses(size):
    image = tissue_image(*size)
    pixelated = corrupt(image, "pixelate", 5, seed=0)
    assert pixelated.shape == image.shape
    # Factor 0.25: a quarter as many distinct rows and columns, each repeated to fill the original size.
    assert np.unique(pixelated, axis=0).shape[0] == size[0] // 4
    assert np.unique(pixelated, axis=1).shape[1] == size[1] // 4


def test_lengths_scale_with_the_image():
    small = tissue_image(128, 160)
    large = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)

    def shrunk(image: np.ndarray) -> np.ndarray:
        return image.reshape(128, 2, 160, 2, 3).mean(axis=(1, 3))

    blurred_large = corrupt(large, "gaussian_blur", 4, seed=0)
    assert psnr(corrupt(small, "gaussian_blur", 4, seed=0), shrunk(blurred_large)) > 40


@pytest.mark.parametrize(
    "name, severity",
    [("fog_of_war", 1), ("gaussian_noise", 0), ("gaussian_noise", 6), ("gaussian_noise", "3"), ("gaussian_noise", True)],
)
def test_unknown_corruption_or_severity_is_an_input_error(name, severity):
    with pytest.raises(InputError):
        corrupt(tissue_image(32, 32), name, severity, seed=0)


@pytest.mark.parametrize("image", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8)])
def test_an_image_that_is_not_rgb_uint8_is_an_input_error(image):
    with pytest.raises(InputError, match="uint8 RGB"):
        corrupt(image, "gaussian_noise", 1, seed=0)


def test_output_seed_is_pinned_and_separates_its_inputs():
    # Pinned: a changed derivation would silently change every robustness set built from a seed.
    assert output_seed(0, "seq_1/frame000", "gaussian_noise", 3) == 6011411466649307843
    seeds = {
        output_seed(*key)
        for key in [(0, "a", "gaussian_noise", 1), (1, "a", "gaussian_noise", 1), (0, "b", "gaussian_noise", 1),
                    (0, "a", "shot_noise", 1), (0, "a", "gaussian_noise", 2)]
    }
    assert len(seeds) == 5 and all(0 <= seed < 2**63 for seed in seeds)


def test_parameters_are_described_for_every_corruption_as_json():
    described = json.loads(json.dumps(describe_parameters()))
    assert list(described) == list(ALL)
    assert all(sorted(entry["severities"]) == ["1", "2", "3", "4", "5"] for entry in described.values())
    assert described["gaussian_blur"]["scaled_by_min_side_over_256"] == ["sigma"]
    assert [described["bleeding"]["severities"][str(s)]["droplets"] for s in SEVERITIES] == [4, 10, 18, 26, 36]
    assert described["zoom_blur"]["severities"]["4"]["factors"][-1] == 1.24


@pytest.mark.parametrize("radius", [1.0, 2.5, 3.75, 6.0])
def test_defocus_disk_mean_equals_a_convolution_with_the_disk(radius):
    image = np.random.default_rng(1).random((40, 50, 3), dtype=np.float32)
    offsets = np.arange(-int(radius), int(radius) + 1)
    disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(np.float64)
    expected = np.stack([ndimage.convolve(image[..., c].astype(np.float64), disk / disk.sum(), mode="nearest") for c in range(3)], axis=-1)
    assert np.abs(_disk_mean(image, radius) - expected).max() < 1e-6


def test_hsv_conversions_equal_matplotlib():
    from matplotlib import colors

    colours = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    np.testing.assert_allclose(rgb_to_hsv(colours), colors.rgb_to_hsv(colours), atol=1e-6)
    hsv = np.random.default_rng(1).random((64, 64, 3), dtype=np.float32)
    np.testing.assert_allclose(hsv_to_rgb(hsv), colors.hsv_to_rgb(hsv), atol=1e-6)


def test_contact_sheet_is_a_labelled_grid():
    image = tissue_image(60, 80)
    sheet = contact_sheet(image, ["gaussian_blur", "bleeding"], [1, 5], seed=0, thumb_width=40)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[2] == 3

    def thumbnail(cell: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(cell).resize((40, 30), Image.Resampling.LANCZOS))

    # Counted from the bottom-right corner: 40x30 cells, 4 px gaps after each; the last row is bleeding.
    np.testing.assert_array_equal(sheet[-34:-4, -44:-4], thumbnail(corrupt(image, "bleeding", 5, seed=0)))
    np.testing.assert_array_equal(sheet[-34:-4, -132:-92], thumbnail(image))
    assert (sheet[-4:] == 255).all()
    with pytest.raises(InputError):
        contact_sheet(image, ["fog_of_war"], [1], seed=0)
