"""What the commands refuse, run as a user runs them: bad input ends in one line naming the file
or setting and the problem, exit status 1, no traceback, and nothing left behind (docs/cli.md).

Most tests reproduce a defect found by trying the commands as a hostile user would; each failed
before the fix. Commands run under resource limits, so that a regression fails the test instead
of exhausting the machine.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_RUN, write_qa, write_sequence
from PIL import Image

from mtlbench.metrics.confusion import LabelRangeError, frame_confusion

MEMORY_LIMIT = 6 * 2**30  # address space of a command; torch maps about 1.5 GiB of it


def _limits(file_size: int | None):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        if file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    return apply


def mtlbench(*args, file_size: int | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """The CLI as a subprocess, with its memory (and optionally its file size) capped."""
    return subprocess.run(
        [sys.executable, "-m", "mtlbench", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, preexec_fn=_limits(file_size),
    )


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def hidden_entries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


@pytest.fixture
def dataset(endovis_source: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ds"
    built = mtlbench("-q", "build-dataset", "mtlendovis", "--source", endovis_source, "--out", out)
    assert built.returncode == 0, built.stderr
    return out


# --- 1. COCO polygons with non-finite or absurd coordinates --------------------------------------


def write_coco_source(root: Path, coordinate: str) -> Path:
    """Three videos of one 10x8 frame each; annotation 7 of esd02 holds `coordinate` (JSON text)."""
    (root / "images").mkdir(parents=True)
    images, annotations = [], []
    for image_id, video in enumerate(("esd01", "esd02", "esd03"), start=1):
        Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(root / "images" / f"{video}_000010.png")
        images.append(f'{{"id": {image_id}, "file_name": "{video}_000010.png", "width": 10, "height": 8}}')
        x = coordinate if video == "esd02" else "6"
        annotation_id = 7 if video == "esd02" else image_id
        annotations.append(f'{{"id": {annotation_id}, "image_id": {image_id}, "category_id": 1, "segmentation": [[2, 2, {x}, 2, 6, 6, 2, 6]]}}')
    (root / "coco.json").write_text(
        f'{{"images": [{", ".join(images)}], "annotations": [{", ".join(annotations)}], '
        '"categories": [{"id": 1, "name": "Marking Area"}]}'
    )
    (root / "activities.csv").write_text("video,start_frame,end_frame,activity\n" + "".join(f"{v},0,100,Marking\n" for v in ("esd01", "esd02", "esd03")))
    return root


@pytest.mark.parametrize("coordinate", ["NaN", "-Infinity", "1e9", "1e400"])
def test_absurd_polygon_coordinates_are_refused_naming_the_annotation(tmp_path: Path, coordinate: str):
    source = write_coco_source(tmp_path / "src", coordinate)
    result = mtlbench(
        "build-dataset", "mtlesd", "--coco", source / "coco.json", "--images", source / "images",
        "--activities", source / "activities.csv", "--out", tmp_path / "out",
    )
    assert_refused(result, "coco.json: annotation 7: polygon point", "is not a number inside the 10x8 image 'esd02_000010.png'")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["src"]


# --- 2. an empty or unreadable EndoVis-18-VQA file is never a label -------------------------------


@pytest.mark.parametrize("content", [b"", b"What organ is being operated?|kidney\n"], ids=["empty", "no action"])
def test_a_qa_file_without_an_action_stops_the_build_or_is_skipped_on_request(endovis_source: Path, tmp_path: Path, content: bytes):
    qa = endovis_source / "seq_2" / "vqa" / "Classification" / "frame001_QA.txt"
    qa.write_bytes(content)
    out = tmp_path / "ds"
    refused = mtlbench("build-dataset", "mtlendovis", "--source", endovis_source, "--out", out)
    assert_refused(refused, "seq_2/vqa/Classification/frame001_QA.txt", "the frame's activity is unknown", "--skip-unlabelled")
    assert not out.exists() and hidden_entries(tmp_path) == []
    skipped = mtlbench("-q", "build-dataset", "mtlendovis", "--source", endovis_source, "--out", out, "--skip-unlabelled")
    assert skipped.returncode == 0, skipped.stderr
    card = json.loads((out / "dataset.json").read_text())
    assert card["skipped"]["QA file without a readable action (skipped with --skip-unlabelled)"] == {"count": 1, "examples": ["seq_2/frame001"]}
    assert "seq02_frame001" not in (out / "samples.csv").read_text()


# --- 3. the evaluator checks the ground truth it reads --------------------------------------------


def test_a_ground_truth_mask_changed_after_the_build_is_refused(dataset: Path, tmp_path: Path):
    dummy = tmp_path / "dummy"
    assert mtlbench("-q", "evaluate", "--write-dummy", dummy, "--dataset", dataset, "--kind", "constant").returncode == 0
    Image.fromarray(np.zeros((8, 10), np.uint8)).save(dataset / "masks" / "seq01_frame001.png")  # a valid mask, other pixels
    result = mtlbench("evaluate", dummy, "--dataset", dataset, "--out", tmp_path / "results.json")
    assert_refused(result, "masks/seq01_frame001.png: sha256 differs from samples.csv")
    assert not (tmp_path / "results.json").exists()


# --- 4. run-baseline checks everything before its folder exists -----------------------------------


@pytest.mark.parametrize(
    "setting, message",
    [
        ("train.epochs=abc", 'train.epochs: expected an integer, got "abc"'),
        ("optim.lr=abc", 'optim.lr: expected a number, got "abc"'),
        ("train.epochs=-1", "train.epochs: must be at least 1, got -1"),
        ("weighting.name=nash", 'weighting.name: "nash" is not one of: "aligned_mtl", "cagrad", "db_mtl", "dwa", "ew", "excess_mtl", "fairgrad", "famo", "gls", "graddrop", "gradnorm", "gradvac", "imtl", "mgda", "moco", "nash_mtl", "pcgrad", "rlw", "stch", "upgrad", "uw"'),
        ("model.encoder.num_heads=5", "model.encoder: invalid ViT shape: width 24 is not divisible by 5 heads"),
    ],
)
def test_bad_settings_are_refused_before_the_run_folder_exists(dataset: Path, tmp_path: Path, setting: str, message: str):
    settings = [argument for value in TINY_RUN + [setting] for argument in ("--set", value)]
    result = mtlbench("run-baseline", "endoarss-tiny", "--dataset", dataset, "--out", tmp_path / "run", *settings)
    assert_refused(result, message)
    assert not (tmp_path / "run").exists()


def test_a_bad_weights_file_leaves_no_folder_and_overwrite_replaces_a_run(dataset: Path, tmp_path: Path):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"\x00" * 100)
    settings = [argument for value in TINY_RUN + ["train.epochs=1"] for argument in ("--set", value)]
    run = tmp_path / "run"
    bad = mtlbench("run-baseline", "endoarss-tiny", "--dataset", dataset, "--out", run, "--weights", weights, *settings)
    assert_refused(bad, "weights.pth: not a", "loader accepts")
    assert not run.exists()
    assert mtlbench("-q", "run-baseline", "endoarss-tiny", "--dataset", dataset, "--out", run, *settings).returncode == 0
    again = mtlbench("run-baseline", "endoarss-tiny", "--dataset", dataset, "--out", run, *settings)
    assert_refused(again, "output folder exists and is not empty (use --overwrite to replace it)")
    (run / "stale.txt").write_text("from the first run")
    replaced = mtlbench("-q", "run-baseline", "endoarss-tiny", "--dataset", dataset, "--out", run, "--overwrite", *settings)
    assert replaced.returncode == 0, replaced.stderr
    assert not (run / "stale.txt").exists() and (run / "results.json").is_file()
    not_a_run = mtlbench("run-baseline", "endoarss-tiny", "--dataset", dataset, "--out", dataset, "--overwrite", *settings)
    assert_refused(not_a_run, "not a run folder (no config.json): --overwrite replaces run folders only")
    assert (dataset / "dataset.json").is_file()


# --- 5. --resume checks the checkpoint and its dataset --------------------------------------------


class _RunsACommand:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_resume_refuses_another_dataset_and_unsafe_or_truncated_checkpoints(endovis_source: Path, dataset: Path, tmp_path: Path):
    run = tmp_path / "run"
    settings = [argument for value in TINY_RUN for argument in ("--set", value)]
    stopped = mtlbench("-q", "run-baseline", "endoarss-tiny", "--dataset", dataset, "--out", run, "--stop-after-epoch", "1", *settings)
    assert stopped.returncode == 0, stopped.stderr
    write_qa(endovis_source, 1, "frame000", {"monopolar_curved_scissors": "Cutting"})  # one label differs
    other = tmp_path / "other"
    assert mtlbench("-q", "build-dataset", "mtlendovis", "--source", endovis_source, "--out", other).returncode == 0
    refused = mtlbench("run-baseline", "--resume", run, "--dataset", other)
    line = assert_refused(refused, "run/checkpoint.pt: trained on the dataset with fingerprint", "--ignore-fingerprint resumes anyway")
    assert json.loads((dataset / "dataset.json").read_text())["fingerprint"] in line

    checkpoint = run / "checkpoint.pt"
    original = checkpoint.read_bytes()
    checkpoint.write_bytes(original[: len(original) // 2])
    truncated = assert_refused(mtlbench("run-baseline", "--resume", run, "--dataset", dataset), "checkpoint.pt: not a readable PyTorch file")
    marker = tmp_path / "code-ran"
    payload = _RunsACommand()
    payload.marker = marker
    torch.save({"model": payload}, checkpoint)
    unsafe = assert_refused(mtlbench("run-baseline", "--resume", run, "--dataset", dataset), "checkpoint.pt: not a file the safe (weights-only) loader accepts")
    assert not marker.exists()
    assert "weights_only" not in truncated + unsafe

    checkpoint.write_bytes(original)
    resumed = mtlbench("-q", "run-baseline", "--resume", run, "--dataset", other, "--ignore-fingerprint")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "run.json").read_text())["dataset"]["fingerprint"] == json.loads((other / "dataset.json").read_text())["fingerprint"]


# --- 6. baselines of another dataset --------------------------------------------------------------


def test_baselines_of_another_dataset_or_split_are_refused(dataset: Path, tmp_path: Path):
    dummy = tmp_path / "dummy"
    assert mtlbench("-q", "evaluate", "--write-dummy", dummy, "--dataset", dataset).returncode == 0
    results = tmp_path / "results.json"
    assert mtlbench("-q", "evaluate", dummy, "--dataset", dataset, "--out", results, "--bootstrap", "0").returncode == 0
    foreign = json.loads(results.read_text())
    foreign["dataset"]["fingerprint"] = "0" * 64
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    refused = mtlbench("evaluate", dummy, "--dataset", dataset, "--baseline", tmp_path / "foreign.json")
    assert_refused(refused, "foreign.json: baseline computed on dataset 'mtlendovis' with fingerprint 0000")
    other_split = json.loads(results.read_text())
    other_split["dataset"]["split"] = "val"
    (tmp_path / "val.json").write_text(json.dumps(other_split))
    assert_refused(mtlbench("evaluate", dummy, "--dataset", dataset, "--baseline", tmp_path / "val.json"), "baseline computed on split 'val', not on 'test'")


# --- 7. output paths ------------------------------------------------------------------------------


def _unwritable_folder() -> Path:
    """A folder where even root cannot create files: sysfs."""
    candidate = Path("/sys/mtlbench-test")
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            pytest.skip("/sys is writable on this machine: no unwritable folder to test with")
    except OSError:
        return candidate


def test_outputs_that_cannot_be_written_are_refused_before_any_work(dataset: Path, endovis_source: Path, tmp_path: Path):
    dummy = tmp_path / "dummy"
    assert mtlbench("-q", "evaluate", "--write-dummy", dummy, "--dataset", dataset).returncode == 0
    existing_folder = tmp_path / "a-folder"
    existing_folder.mkdir()
    assert_refused(mtlbench("evaluate", dummy, "--dataset", dataset, "--out", existing_folder), "--out names an existing folder; give a file path")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert_refused(mtlbench("evaluate", dummy, "--dataset", dataset, "--out", a_file / "results.json"), "a-file is a file, not a folder")
    unwritable = _unwritable_folder()
    commands = [
        ("evaluate", dummy, "--dataset", dataset, "--out", unwritable / "results.json"),
        ("evaluate", dummy, "--dataset", dataset, "--plots", unwritable / "plots"),
        ("evaluate", "--write-dummy", unwritable / "dummy", "--dataset", dataset),
        ("build-dataset", "mtlendovis", "--source", endovis_source, "--out", unwritable / "ds"),
        ("demo-sources", "--out", unwritable / "sources"),
        ("run-baseline", "endoarss-tiny", "--dataset", dataset, "--out", unwritable / "run"),
    ]
    for command in commands:
        assert_refused(mtlbench(*command), "cannot write in /sys (Permission denied)")


# --- 8. SIGTERM and kill -9 during a build --------------------------------------------------------


def _large_source(root: Path) -> Path:
    rng = np.random.default_rng(0)
    labels = {f"frame{i:03d}": rng.integers(0, 5, (256, 320), dtype=np.uint8) for i in range(24)}
    for number in (1, 2, 15):
        write_sequence(root, number, labels)
        for frame in labels:
            write_qa(root, number, frame, {"prograsp_forceps": "Grasping"})
    return root


def _descendants(pid: int) -> set[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_build(source: Path, out: Path) -> tuple[subprocess.Popen, set[int]]:
    """A two-worker build, stopped in the middle: returns it and its worker processes once its
    temporary folder exists and its workers run."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mtlbench", "-q", "build-dataset", "mtlendovis", "--source", str(source), "--out", str(out), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_limits(None),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        staging = list(out.parent.glob(f".{out.name}.partial-*"))
        workers = _descendants(process.pid)
        if staging and any(staging[0].glob("images/*.png")) and len(workers) >= 3:  # fork server and two workers
            return process, workers
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the build did not start its workers within a minute")


def _wait_gone(pids: set[int], seconds: float = 10) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    return {pid for pid in pids if _alive(pid)}


def test_sigterm_during_a_build_leaves_nothing_and_no_workers(tmp_path: Path):
    source = _large_source(tmp_path / "src")
    process, workers = _start_build(source, tmp_path / "ds")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and stderr.strip() == "stopped by SIGTERM"
    assert _wait_gone(workers) == set()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["src"]


def test_a_build_killed_outright_is_cleaned_up_by_the_next_build(tmp_path: Path):
    source = _large_source(tmp_path / "src")
    process, workers = _start_build(source, tmp_path / "ds")
    process.kill()
    process.wait(timeout=60)
    assert _wait_gone(workers) == set()  # the workers end with their parent
    assert [path.name for path in tmp_path.glob(".ds.partial-*")] == [f".ds.partial-{process.pid}"]
    rebuilt = mtlbench("-q", "build-dataset", "mtlendovis", "--source", source, "--out", tmp_path / "ds")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ds", "src"]


# --- 9. a zip submission extracts only what is read -----------------------------------------------


def test_a_zip_extracts_only_what_the_evaluator_reads(dataset: Path, tmp_path: Path):
    dummy = tmp_path / "dummy"
    assert mtlbench("-q", "evaluate", "--write-dummy", dummy, "--dataset", dataset).returncode == 0
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(dummy.rglob("*")):
            zipped.write(path, path.relative_to(dummy).as_posix())
        zipped.writestr("notes/junk.bin", bytes(100 * 2**20))  # 100 MB of zeros, about 100 kB zipped
    assert archive.stat().st_size < 2**20
    # Files larger than 16 MiB cannot be written: extracting the junk would kill the command.
    result = mtlbench("evaluate", archive, "--dataset", dataset, "--out", tmp_path / "results.json", "--bootstrap", "0", file_size=16 * 2**20)
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert json.loads((tmp_path / "results.json").read_text())["submission"]["tasks_scored"] == ["activity", "segmentation"]


# --- 10. a split file without a test split --------------------------------------------------------


def test_a_split_file_without_test_is_refused_unless_intended(endovis_source: Path, tmp_path: Path):
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps({"train": [2], "val": [15]}))
    out = tmp_path / "ds"
    refused = mtlbench("build-dataset", "mtlendovis", "--source", endovis_source, "--out", out, "--split-file", split_file)
    assert_refused(refused, "splits.json: split(s) 'test' would have no samples", "--allow-empty-splits")
    assert not out.exists()
    built = mtlbench("-q", "build-dataset", "mtlendovis", "--source", endovis_source, "--out", out, "--split-file", split_file, "--allow-empty-splits")
    assert built.returncode == 0, built.stderr
    assert json.loads((out / "dataset.json").read_text())["splits"]["test"]["samples"] == 0


# --- 11. the uint8 confusion path -----------------------------------------------------------------


def test_out_of_range_ground_truth_cannot_alias_the_ignore_value():
    """12 classes: gt 20 * 12 + 5 = 245 wraps into the ignored images 244..255 of the uint8 path."""
    ground_truth = np.array([[20, 0], [255, 1]], dtype=np.uint8)
    prediction = np.array([[5, 0], [3, 1]], dtype=np.uint8)
    with pytest.raises(LabelRangeError, match="ground-truth value 20 is outside 0..11") as caught:
        frame_confusion(ground_truth, prediction, 12)
    assert caught.value.in_prediction is False
    ground_truth[0, 0] = 255
    expected = np.zeros((12, 13), dtype=np.int64)
    expected[0, 0] = expected[1, 1] = 1
    np.testing.assert_array_equal(frame_confusion(ground_truth, prediction, 12), expected)


# --- 12. --quiet anywhere -------------------------------------------------------------------------


def test_quiet_is_accepted_after_the_sub_command(endovis_source: Path, tmp_path: Path):
    for position, flag in (("end", "--quiet"), ("middle", "-q")):
        out = tmp_path / position
        arguments = ["build-dataset", "mtlendovis", "--source", endovis_source, "--out", out]
        arguments = arguments + [flag] if position == "end" else arguments[:2] + [flag] + arguments[2:]
        result = mtlbench(*arguments)
        assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result.stderr
    assert mtlbench("info", tmp_path / "end", "-q").stdout == ""


# --- every command ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["build-dataset", "mtlendovis", "--source", "{missing}", "--out", "{out}"], "missing: folder not found"),
        (["build-dataset", "mtlesd", "--release", "{missing}", "--out", "{out}"], "missing: release folder not found"),
        (["build-dataset", "endoarss-release", "--release", "{missing}", "--name", "x", "--out", "{out}"], "missing: release folder not found"),
        (["build-dataset", "mtlendovis-gen", "--base", "{missing}", "--out", "{out}"], "missing: dataset folder not found"),
        (["build-dataset", "mtlendovis", "--source", "{missing}", "--out", "{out}", "--export", "gif"], "--export: unknown export 'gif'"),
        (["info", "{missing}"], "missing: dataset folder not found"),
        (["export", "{missing}", "--to", "coco"], "missing: dataset folder not found"),
        (["evaluate", "{missing}", "--dataset", "{missing}"], "missing: dataset folder not found"),
        (["run-baseline", "no-such-preset", "--dataset", "{missing}", "--out", "{out}"], "no-such-preset: unknown preset"),
        (["weights", "inspect", "{missing}"], "missing: file not found"),
        (["contact-sheet", "{missing}", "--out", "{out}"], "missing: dataset folder not found"),
    ],
)
def test_every_command_refuses_bad_input_with_one_line_and_no_output(tmp_path: Path, arguments: list[str], fragment: str):
    paths = {"missing": tmp_path / "missing", "out": tmp_path / "out"}
    assert_refused(mtlbench(*(argument.format(**paths) for argument in arguments)), fragment)
    assert list(tmp_path.iterdir()) == []


def test_help_shows_flags_without_a_value_and_marks_required_options():
    wide = {**os.environ, "COLUMNS": "250"}
    info = subprocess.run([sys.executable, "-m", "mtlbench", "info", "--help"], capture_output=True, text=True, env=wide)
    assert "--verify" in info.stdout and "<bool>" not in info.stdout
    evaluate = subprocess.run([sys.executable, "-m", "mtlbench", "evaluate", "--help"], capture_output=True, text=True, env=wide)
    assert "predictions are for. Required, except with --format." in evaluate.stdout
