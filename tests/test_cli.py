"""The `mtlbench` command run as a subprocess, the way a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mtlbench import __version__


def mtlbench(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mtlbench", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_version():
    result = mtlbench("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"mtlbench {__version__}"


def test_build_info_and_verify(endovis_source: Path, tmp_path: Path):
    out = tmp_path / "ds"
    built = mtlbench("build-dataset", "mtlendovis", "--source", endovis_source, "--out", out)
    assert built.returncode == 0, built.stderr
    assert "built" in built.stdout and "9 frames (train 3, val 3, test 3)" in built.stdout
    assert "skipped 1 x sequence without VQA annotations: seq_13" in built.stdout
    card = mtlbench("info", out, "--verify")
    assert card.returncode == 0, card.stderr
    for fragment in ("mtlendovis 1.0.0", "fingerprint:", "Ultrasound_Sensing", "kidney-parenchyma", "verified 18 files"):
        assert fragment in card.stdout
    (out / "masks" / "seq15_frame001.png").write_bytes(b"tampered")
    tampered = mtlbench("info", out, "--verify")
    assert tampered.returncode == 1
    assert "masks/seq15_frame001.png: sha256 differs" in tampered.stderr
    assert "1 file(s) fail verification" in tampered.stderr


def test_quiet_prints_nothing(endovis_source: Path, tmp_path: Path):
    result = mtlbench("--quiet", "build-dataset", "mtlendovis", "--source", endovis_source, "--out", tmp_path / "ds")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_bad_inputs_exit_with_one_line(endovis_source: Path, tmp_path: Path):
    missing = mtlbench("build-dataset", "mtlendovis", "--source", tmp_path / "absent", "--out", tmp_path / "ds")
    assert_one_line_error(missing, "absent", "folder not found")
    frame = endovis_source / "miccai_challenge_2018_release_1/seq_2/left_frames/frame000.png"
    frame.write_bytes(frame.read_bytes()[:50])
    corrupt = mtlbench("build-dataset", "mtlendovis", "--source", endovis_source, "--out", tmp_path / "ds", "--workers", "2")
    assert_one_line_error(corrupt, "seq_2/left_frames/frame000.png", "corrupt or unreadable image")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["endovis"]
    not_a_dataset = mtlbench("info", tmp_path)
    assert_one_line_error(not_a_dataset, "dataset.json: missing")


def test_existing_target_needs_overwrite(endovis_source: Path, tmp_path: Path):
    out = tmp_path / "ds"
    assert mtlbench("-q", "build-dataset", "mtlendovis", "--source", endovis_source, "--out", out).returncode == 0
    again = mtlbench("build-dataset", "mtlendovis", "--source", endovis_source, "--out", out)
    assert_one_line_error(again, str(out), "--overwrite")
    replaced = mtlbench("-q", "build-dataset", "mtlendovis", "--source", endovis_source, "--out", out, "--overwrite")
    assert replaced.returncode == 0


def test_mtlesd_needs_one_complete_input_mode(tmp_path: Path):
    result = mtlbench("build-dataset", "mtlesd", "--coco", tmp_path / "a.json", "--out", tmp_path / "ds")
    assert_one_line_error(result, "--release DIR", "--coco FILE --images DIR --activities FILE")


@pytest.mark.parametrize("command", [["build-dataset", "--help"], ["info", "--help"], ["demo-sources", "--help"]])
def test_help_pages(command):
    result = mtlbench(*command)
    assert result.returncode == 0 and "Usage" in result.stdout


# Slow (90 s on the 2-core machine): `make demo` runs the same chain, and each step has its own fast test.
@pytest.mark.slow
def test_demo_pipeline_as_make_demo_runs_it(tmp_path: Path):
    sources = tmp_path / "sources"
    assert mtlbench("-q", "demo-sources", "--out", sources).returncode == 0
    endovis = mtlbench(
        "build-dataset", "mtlendovis", "--source", sources / "endovis2018", "--vqa", sources / "endovis18-vqa",
        "--out", tmp_path / "mtlendovis", "--export", "coco,hf", "--workers", "2",
    )
    assert endovis.returncode == 0, endovis.stderr
    release_classes = mtlbench(
        "-q", "build-dataset", "mtlendovis", "--source", sources / "endovis2018", "--vqa", sources / "endovis18-vqa",
        "--classes", "release", "--out", tmp_path / "mtlendovis-release", "--export", "endoarss", "--workers", "2",
    )
    assert release_classes.returncode == 0, release_classes.stderr
    assert "skipped 1 x sequence without VQA annotations: seq_13" in endovis.stdout
    assert "skipped 1 x frame without label PNG: seq_16/frame007" in endovis.stdout
    assert "skipped 1 x frame without QA file: seq_2/frame011" in endovis.stdout
    esd = sources / "esd-coco"
    built_esd = mtlbench(
        "build-dataset", "mtlesd", "--coco", esd / "annotations.json", "--images", esd / "images",
        "--activities", esd / "activities.csv", "--out", tmp_path / "mtlesd", "--export", "endoarss",
    )
    assert built_esd.returncode == 0, built_esd.stderr
    for name in ("mtlendovis", "mtlesd"):
        card = mtlbench("info", tmp_path / name, "--verify")
        assert card.returncode == 0 and "verified" in card.stdout, card.stderr
    reimported = mtlbench(
        "-q", "build-dataset", "mtlesd", "--release", tmp_path / "mtlesd/exports/endoarss", "--out", tmp_path / "again"
    )
    assert reimported.returncode == 0, reimported.stderr
    original = json.loads((tmp_path / "mtlesd/dataset.json").read_text())
    again = json.loads((tmp_path / "again/dataset.json").read_text())
    assert again["fingerprint"] == original["fingerprint"]
    assert again["splits"] == original["splits"]

    fess = mtlbench("build-dataset", "ent-fess", "--source", sources / "ent-fess", "--out", tmp_path / "ent-fess", "--export", "hf", "--workers", "2")
    assert fess.returncode == 0, fess.stderr
    assert "skipped 41 x frame before the first report sentence" in fess.stdout
    pitvqa = mtlbench("build-dataset", "pitvqa", "--source", sources / "pitvqa", "--out", tmp_path / "pitvqa")
    assert pitvqa.returncode == 0, pitvqa.stderr
    assert "skipped 3 x image without a QA file" in pitvqa.stdout
    for name in ("ent-fess", "pitvqa"):
        card = mtlbench("info", tmp_path / name, "--verify")
        assert card.returncode == 0 and "verified" in card.stdout, card.stderr
    assert "Task landmarks: multilabel" in mtlbench("info", tmp_path / "ent-fess").stdout
    dummy = mtlbench("-q", "evaluate", "--write-dummy", tmp_path / "fess-dummy", "--dataset", tmp_path / "ent-fess", "--kind", "random")
    assert dummy.returncode == 0, dummy.stderr
    scored = mtlbench("evaluate", tmp_path / "fess-dummy", "--dataset", tmp_path / "ent-fess", "--out", tmp_path / "fess.json", "--bootstrap", "0")
    assert scored.returncode == 0, scored.stderr
    results = json.loads((tmp_path / "fess.json").read_text(encoding="utf-8"))
    assert results["submission"]["tasks_scored"] == ["landmarks", "current_description", "next_description", "report"]
    assert results["report"]["embedding_model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.slow
def test_the_vision_language_builders_refuse_bad_input_in_one_line(tmp_path: Path):
    assert mtlbench("-q", "demo-sources", "--out", tmp_path / "sources").returncode == 0
    fess = tmp_path / "sources" / "ent-fess"
    out = tmp_path / "out"
    assert_one_line_error(mtlbench("build-dataset", "ent-fess", "--source", fess, "--out", out, "--rate", "3"), "--rate: must be a whole number")
    assert_one_line_error(
        mtlbench("build-dataset", "ent-fess", "--source", fess, "--out", out, "--export", "coco"),
        "--export: export 'coco' cannot be written for ent-fess: COCO annotations need a segmentation task",
    )
    activities = fess / "fess02" / "activities.csv"
    lines = activities.read_text(encoding="utf-8").splitlines()
    start = lines[2].split(",")[0]
    lines[2] = ",".join([str(float(start) - 0.5), *lines[2].split(",")[1:]])  # starts before the first activity ends
    activities.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert_one_line_error(mtlbench("build-dataset", "ent-fess", "--source", fess, "--out", out), "fess02/activities.csv: line 3: overlaps the activity of line 2")
    (fess / "fess01" / "video.mp4").write_bytes(b"not a video")
    assert_one_line_error(mtlbench("build-dataset", "ent-fess", "--source", fess, "--out", out), "fess01/video.mp4: cannot be read as a video")
    assert_one_line_error(mtlbench("build-dataset", "pitvqa", "--source", fess, "--out", out), "QA: missing: a PitVQA folder holds")
    assert not out.exists()


def test_export_after_the_fact(endovis_source: Path, tmp_path: Path):
    out = tmp_path / "ds"
    assert mtlbench("-q", "build-dataset", "mtlendovis", "--source", endovis_source, "--out", out, "--classes", "release").returncode == 0
    exported = mtlbench("export", out, "--to", "coco,endoarss")
    assert exported.returncode == 0, exported.stderr
    coco = json.loads((out / "exports/coco/test.json").read_text())
    assert [image["sample_id"] for image in coco["images"]] == ["seq01_frame000", "seq01_frame001", "seq01_frame002"]
    assert sorted(p.name for p in (out / "exports/endoarss/train").iterdir()) == ["2"]  # Grasping, id 1
    assert_one_line_error(mtlbench("export", out, "--to", "parquet"), "unknown export 'parquet'")
    assert mtlbench("info", out, "--verify").returncode == 0  # exports are outside the manifest


def test_classes_release_builds_ten_classes_that_export_to_endoarss(endovis_source: Path, tmp_path: Path):
    out = tmp_path / "ds"
    built = mtlbench("build-dataset", "mtlendovis", "--source", endovis_source, "--out", out, "--classes", "release", "--export", "endoarss")
    assert built.returncode == 0, built.stderr
    marker = json.loads((out / "exports/endoarss/mtlbench-export.json").read_text(encoding="utf-8"))
    assert [c["name"] for c in marker["classes"]][:3] == ["background-tissue", "instrument", "kidney-parenchyma"]
    assert len(marker["classes"]) == 10
    card = mtlbench("info", out)
    assert card.returncode == 0, card.stderr
    assert "classes: release (10 classes" in card.stdout and "instrument " in card.stdout


def test_the_endoarss_export_of_twelve_classes_and_an_unknown_scheme_are_refused_in_one_line(endovis_source: Path, tmp_path: Path):
    out = tmp_path / "ds"
    reason = "the EndoARSS release's loader accepts at most 10 segmentation classes"
    build = mtlbench("build-dataset", "mtlendovis", "--source", endovis_source, "--out", out, "--export", "endoarss")
    assert_one_line_error(build, "--export: export 'endoarss' cannot be written for mtlendovis", reason, "has 12", "--classes release")
    unknown = mtlbench("build-dataset", "mtlendovis", "--source", endovis_source, "--out", out, "--classes", "endovis17")
    assert_one_line_error(unknown, "--classes: unknown class scheme 'endovis17' (known: endovis18, release)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["endovis"]
    assert mtlbench("-q", "build-dataset", "mtlendovis", "--source", endovis_source, "--out", out).returncode == 0
    assert_one_line_error(mtlbench("export", out, "--to", "coco,endoarss"), "--to: export 'endoarss'", reason)
    assert not (out / "exports").exists()
