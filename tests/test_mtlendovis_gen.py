"""The robustness builder: corrupted copies of a dataset's test frames, in the standard format."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tree_digest
from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.builders.mtlendovis_gen import build_mtlendovis_gen
from mtlbench.builders.options import BuildOptions
from mtlbench.corruptions import corrupt, output_seed
from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError

CHOSEN = ("gaussian_noise", "pixelate", "bleeding")


@pytest.fixture
def base(endovis_source: Path, tmp_path: Path) -> Path:
    return build_mtlendovis(endovis_source, tmp_path / "base")


def test_one_sample_per_frame_corruption_and_severity(base: Path, tmp_path: Path):
    out = build_mtlendovis_gen(base, tmp_path / "gen", corruptions=CHOSEN, severities=(1, 3), include_clean=True)
    gen, clean = read_dataset(out), read_dataset(base)
    assert gen.name == "mtlendovis-gen" and gen.split_names == ("test",)
    assert len(gen.samples) == 3 * (len(CHOSEN) * 2 + 1)
    clean_by_id = {s.sample_id: s for s in clean.split("test")}
    for sample in gen.samples:
        original = clean_by_id[sample.extra["clean_sample_id"]]
        assert (sample.width, sample.height, sample.activity_id, sample.sequence, sample.frame) == (
            original.width, original.height, original.activity_id, original.sequence, original.frame)
        assert sample.mask_sha256 == original.mask_sha256  # masks copied unchanged
        if sample.extra["corruption"] == "clean":
            assert sample.extra["severity"] == "0" and sample.image_sha256 == original.image_sha256
        else:
            assert sample.image_sha256 != original.image_sha256
    first = gen.samples[0]
    assert first.sample_id == "seq01_frame000__bleeding_s1"  # rows are ordered by sample_id
    assert gen.meta["source"]["base"]["fingerprint"] == clean.fingerprint
    assert gen.meta["build_parameters"]["corruptions"] == list(CHOSEN)


def test_rebuild_is_byte_identical_and_seeds_differ_per_frame(base: Path, tmp_path: Path):
    one = build_mtlendovis_gen(base, tmp_path / "one", corruptions=("gaussian_noise",), severities=(2,))
    two = build_mtlendovis_gen(base, tmp_path / "two", corruptions=("gaussian_noise",), severities=(2,), options=BuildOptions(workers=2))
    assert tree_digest(one) == tree_digest(two)
    other = build_mtlendovis_gen(base, tmp_path / "other", corruptions=("gaussian_noise",), severities=(2,), seed=1)
    assert tree_digest(other)["samples.csv"] != tree_digest(one)["samples.csv"]
    # each frame gets the noise of its own seed, derived from its clean sample id
    for sample in read_dataset(one).samples:
        clean = np.asarray(Image.open(base / "images" / f"{sample.extra['clean_sample_id']}.png"))
        seed = output_seed(0, sample.extra["clean_sample_id"], "gaussian_noise", 2)
        np.testing.assert_array_equal(np.asarray(Image.open(one / sample.image)), corrupt(clean, "gaussian_noise", 2, seed=seed))


def test_frames_option_and_release_protocol_keep_geometry(base: Path, tmp_path: Path):
    out = build_mtlendovis_gen(base, tmp_path / "gen", corruptions=("pixelate", "zoom_blur"), severities=(5,), frames=2, release_compat=True)
    gen = read_dataset(out)
    assert sorted({s.extra["clean_sample_id"] for s in gen.samples}) == ["seq01_frame000", "seq01_frame002"]
    for sample in gen.samples:
        assert Image.open(out / sample.image).size == (sample.width, sample.height) == (10, 8)


def test_bad_choices_are_refused(base: Path, tmp_path: Path):
    with pytest.raises(InputError, match="--corruptions: unknown corruption 'fog_of_war' \\(known: bleeding, "):
        build_mtlendovis_gen(base, tmp_path / "gen", corruptions=("fog_of_war",))
    with pytest.raises(InputError, match="severities must be among"):
        build_mtlendovis_gen(base, tmp_path / "gen", severities=(0, 6))
    gen = build_mtlendovis_gen(base, tmp_path / "gen", corruptions=("saturate",), severities=(1,))
    with pytest.raises(InputError, match="already a robustness set"):
        build_mtlendovis_gen(gen, tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_cli_builds_a_gen_set_and_a_contact_sheet(base: Path, tmp_path: Path):
    mtlbench = [sys.executable, "-m", "mtlbench"]
    built = subprocess.run(mtlbench + ["build-dataset", "mtlendovis-gen", "--base", str(base), "--out", str(tmp_path / "gen"),
                                       "--corruptions", "jpeg_compression,speckle_noise", "--severities", "1,5"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert "12 frames (test 12)" in built.stdout
    sheet = tmp_path / "sheet.png"
    drawn = subprocess.run(mtlbench + ["contact-sheet", str(base), "--out", str(sheet), "--corruptions", "gaussian_blur,bleeding"], capture_output=True, text=True)
    assert drawn.returncode == 0, drawn.stderr
    assert Image.open(sheet).mode == "RGB"
    bad = subprocess.run(mtlbench + ["build-dataset", "mtlendovis-gen", "--base", str(base), "--out", str(tmp_path / "x"), "--severities", "1,x"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: --severities")
