"""The ent-fess builder on small hand-made FESS exports, and on the demo export for determinism."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import tree_digest
from PIL import Image

from mtlbench.builders.ent_fess import build_ent_fess
from mtlbench.builders.options import BuildOptions
from mtlbench.dataset.manifest import read_dataset
from mtlbench.demo.fess import write_fess
from mtlbench.errors import InputError
from mtlbench.progress import silent
from mtlbench.sources.video import frame_rgb
from mtlbench.tasks import TextLabel

W, H = 64, 48
VIDEO_FPS = 10
LANDMARKS = ("ostium", "concha", "septum", "bulla")  # ids 0..3
ACTIVITY_HEADER = ("start", "end", "landmarks", "current", "next")

# proc_a: a 3 s video; the grid of 200 ms is global, so the activity from 1.05 s is sampled from 1.2 s.
NFD_NEXT = "U\u0308bergang zur Straße."  # a decomposed Ü: stored as written, not normalised
A_ACTIVITIES = [
    ("0.2", "1.0", "septum|ostium", "Die Kieferhöhle ist eröffnet.", "Der Zugang zur Stirnhöhle ist frei."),
    ("1.05", "1.6", "concha", "Größe der mittleren Muschel: mäßig.", NFD_NEXT),
    ("2", "2.999", "", "Sicht durch Blut verlegt.", "Ende der Operation."),
]
A_REPORT = [  # written with the columns in another order: sentence,time,keyword
    ("0.4", "Inspektion", "Es erfolgt die Inspektion der Nasenhaupthöhle."),
    ("1.3", "Uncinektomie", "Uncinektomie mit dem Sichelmesser, Blutung mäßig."),
    ("2.200", "Blutstillung", "Blutstillung; Größe der Läsion: 3 mm."),
]
# proc_b: 25 PNG frames at 12.5 fps (2 s); frame i is shown from 80 i ms.
B_FPS, B_FRAMES = 12.5, 25
B_ACTIVITIES = [("0.000", "1.9", " bulla | ostium ", "Die Bulla ethmoidalis ist geschlossen.", "Die Bulla ist eröffnet.")]
B_REPORT = [("0.5", "Bullaeröffnung", "Bullaeröffnung mit dem Shaver."), ("1.6", "Tamponade", "Tamponade mit Merocel.")]
# proc_c: a 1 s video in Matroska
C_ACTIVITIES = [("0", "1", "septum", "Nasenscheidewand gerade.", "Ende der Operation.")]
C_REPORT = [("0", "Inspektion", "Inspektion.")]
SPLIT = {"train": ["proc_a"], "val": ["proc_c"], "test": ["proc_b"]}


def index_luma(index: int) -> np.ndarray:
    """A Y plane showing `index` in binary, one bit per 16x16 block, dark or light."""
    y = np.full((H, W), 16, np.uint8)
    for bit in range(12):
        if index >> bit & 1:
            row, column = divmod(bit, 4)
            y[row * 16 : (row + 1) * 16, column * 16 : (column + 1) * 16] = 235
    return y


def write_video(path: Path, frames: int, codec: str = "mpeg4") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=VIDEO_FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for index in range(frames):
            chroma = np.full((H // 2, W), 96 + index, np.uint8)  # a tint that changes too
            frame = av.VideoFrame.from_ndarray(np.concatenate([index_luma(index), chroma]), format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video, by plain PyAV decoding, in the builder's colour conversion."""
    with av.open(str(path)) as container:
        return [frame_rgb(frame, str(path)) for frame in container.decode(container.streams.video[0])]


def csv_text(header, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_table(path: Path, header, rows, bom: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + csv_text(header, rows).encode("utf-8"))


def write_frames(folder: Path, count: int, fps) -> list[np.ndarray]:
    (folder / "frames").mkdir(parents=True)
    rng = np.random.default_rng(count)
    images = [rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for _ in range(count)]
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / "frames" / f"{index:06d}.png")
    (folder / "frames.json").write_text(json.dumps({"fps": fps}))
    return images


def make_source(root: Path) -> Path:
    (root / "notes").mkdir(parents=True)  # no activities.csv: skipped and reported
    (root / "notes" / "readme.txt").write_text("not a procedure")
    (root / "landmarks.txt").write_text("\n".join(LANDMARKS) + "\n\n")
    write_video(root / "proc_a" / "video.mp4", 30)
    write_table(root / "proc_a" / "activities.csv", ACTIVITY_HEADER, A_ACTIVITIES)
    write_table(root / "proc_a" / "report.csv", ("sentence", "time", "keyword"), [(s, t, k) for t, k, s in A_REPORT])
    write_frames(root / "proc_b", B_FRAMES, B_FPS)
    write_table(root / "proc_b" / "activities.csv", ACTIVITY_HEADER, B_ACTIVITIES, bom=True)
    write_table(root / "proc_b" / "report.csv", ("time", "keyword", "sentence"), B_REPORT)
    write_video(root / "proc_c" / "video.mkv", 10)
    write_table(root / "proc_c" / "activities.csv", ACTIVITY_HEADER, C_ACTIVITIES)
    write_table(root / "proc_c" / "report.csv", ("time", "keyword", "sentence"), C_REPORT)
    return root


def write_split(path: Path, splits: dict = SPLIT) -> Path:
    path.write_text(json.dumps(splits))
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_source(tmp_path / "fess")


def by_id(card) -> dict:
    return {sample.sample_id: sample for sample in card.samples}


S_A = [sentence for _, _, sentence in A_REPORT]
S_B = [sentence for _, _, sentence in B_REPORT]
CURRENT_A = [row[3] for row in A_ACTIVITIES]
NEXT_A = [row[4] for row in A_ACTIVITIES]
# sample id -> (split, landmarks, current, next, (report sentence, keyword, previous))
EXPECTED = {
    # proc_a: 200 ms comes before the first sentence (0.4 s); 1000 and 1600 ms are activity ends (exclusive)
    "proc_a_00000400": ("train", (0, 2), CURRENT_A[0], NEXT_A[0], (S_A[0], "Inspektion", "")),  # exactly at 0.4 s
    "proc_a_00000600": ("train", (0, 2), CURRENT_A[0], NEXT_A[0], (S_A[0], "Inspektion", "")),
    "proc_a_00000800": ("train", (0, 2), CURRENT_A[0], NEXT_A[0], (S_A[0], "Inspektion", "")),
    "proc_a_00001200": ("train", (1,), CURRENT_A[1], NEXT_A[1], (S_A[0], "Inspektion", "")),
    "proc_a_00001400": ("train", (1,), CURRENT_A[1], NEXT_A[1], (S_A[1], "Uncinektomie", S_A[0])),
    "proc_a_00002000": ("train", (), CURRENT_A[2], NEXT_A[2], (S_A[1], "Uncinektomie", S_A[0])),
    "proc_a_00002200": ("train", (), CURRENT_A[2], NEXT_A[2], (S_A[2], "Blutstillung", S_A[1])),  # exactly at 2.2 s
    "proc_a_00002400": ("train", (), CURRENT_A[2], NEXT_A[2], (S_A[2], "Blutstillung", S_A[1])),
    "proc_a_00002600": ("train", (), CURRENT_A[2], NEXT_A[2], (S_A[2], "Blutstillung", S_A[1])),
    "proc_a_00002800": ("train", (), CURRENT_A[2], NEXT_A[2], (S_A[2], "Blutstillung", S_A[1])),
    **{
        f"proc_c_{t:08d}": ("val", (2,), C_ACTIVITIES[0][3], C_ACTIVITIES[0][4], (C_REPORT[0][2], "Inspektion", ""))
        for t in (0, 200, 400, 600, 800)
    },
    # proc_b: 0, 200 and 400 ms come before its first sentence (0.5 s)
    **{
        f"proc_b_{t:08d}": ("test", (0, 3), B_ACTIVITIES[0][3], B_ACTIVITIES[0][4], (S_B[0], "Bullaeröffnung", ""))
        for t in (600, 800, 1000, 1200, 1400)
    },
    **{
        f"proc_b_{t:08d}": ("test", (0, 3), B_ACTIVITIES[0][3], B_ACTIVITIES[0][4], (S_B[1], "Tamponade", S_B[0]))
        for t in (1600, 1800)
    },
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_samples_labels_and_record(source: Path, tmp_path: Path):
    split_file = write_split(tmp_path / "split.json")
    out = build_ent_fess(source, tmp_path / "ds", split_file=split_file)
    card = read_dataset(out)
    samples = by_id(card)
    assert list(samples) == list(EXPECTED)  # train, val, test; by id (= by time) within each
    assert [task.name for task in card.tasks] == ["landmarks", "current_description", "next_description", "report"]
    assert card.task("landmarks").to_json()["labels"] == list(LANDMARKS)
    for sample_id, (split, landmarks, current, following, (sentence, keyword, previous)) in EXPECTED.items():
        sample = samples[sample_id]
        procedure, time_ms = sample_id.rsplit("_", 1)
        assert (sample.split, sample.sequence, sample.frame) == (split, procedure, time_ms)
        assert sample.labels["landmarks"] == landmarks
        assert sample.labels["current_description"] == TextLabel(current, ())
        assert sample.labels["next_description"] == TextLabel(following, ())
        assert sample.labels["report"] == TextLabel(sentence, (("keyword", keyword), ("previous", previous)))
    meta = card.meta
    assert meta["skipped"] == {
        "folder without activities.csv": {"count": 1, "examples": ["notes"]},
        "frame before the first report sentence": {
            "count": 4,
            "examples": ["proc_a_00000200", "proc_b_00000000", "proc_b_00000200", "proc_b_00000400"],
        },
    }
    assert {split: card.statistics[split]["samples"] for split in ("train", "val", "test")} == {"train": 10, "val": 5, "test": 7}
    assert meta["source"]["counts"] == {"procedures": 3, "activities": 5, "report_sentences": 6}
    parameters = meta["build_parameters"]
    assert (parameters["rate_fps"], parameters["seed"]) == (5, 0)
    assert parameters["split"] == {"source": "split file", **SPLIT}
    files = {
        "landmarks.txt": source / "landmarks.txt",
        **{f"{p}/{f}": source / p / f for p in ("proc_a", "proc_b", "proc_c") for f in ("activities.csv", "report.csv")},
        "proc_a/video.mp4": source / "proc_a" / "video.mp4",
        "proc_b/frames.json": source / "proc_b" / "frames.json",
        "proc_c/video.mkv": source / "proc_c" / "video.mkv",
        "split_file": split_file,
    }
    assert meta["source"]["inputs_sha256"] == {name: sha256(path) for name, path in files.items()}


def test_texts_are_stored_exactly(source: Path, tmp_path: Path):
    out = build_ent_fess(source, tmp_path / "ds", split_file=write_split(tmp_path / "split.json"))
    raw = (out / "samples.csv").read_bytes()
    rows = {row["sample_id"]: row for row in csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))}
    assert rows["proc_a_00001200"]["next_description"] == NFD_NEXT  # still decomposed
    assert NFD_NEXT.encode("utf-8") in raw and "Übergang".encode("utf-8") not in raw
    assert rows["proc_a_00001200"]["current_description"] == "Größe der mittleren Muschel: mäßig."
    assert rows["proc_a_00002200"]["report"] == "Blutstillung; Größe der Läsion: 3 mm."
    assert rows["proc_a_00002200"]["report.keyword"] == "Blutstillung"
    assert rows["proc_a_00002200"]["report.previous"] == "Uncinektomie mit dem Sichelmesser, Blutung mäßig."
    assert rows["proc_b_00000600"]["report.keyword"] == "Bullaeröffnung"
    assert rows["proc_b_00000600"]["report.previous"] == ""
    assert rows["proc_b_00000600"]["landmarks"] == "ostium|bulla"
    assert rows["proc_a_00002000"]["landmarks"] == ""


def test_images_are_the_frames_shown_at_the_sample_times(source: Path, tmp_path: Path):
    card = read_dataset(build_ent_fess(source, tmp_path / "ds", split_file=write_split(tmp_path / "split.json")))
    video_a, video_c = decoded_frames(source / "proc_a" / "video.mp4"), decoded_frames(source / "proc_c" / "video.mkv")
    assert (len(video_a), len(video_c)) == (30, 10)
    frame_a = {400: 4, 600: 6, 800: 8, 1200: 12, 1400: 14, 2000: 20, 2200: 22, 2400: 24, 2600: 26, 2800: 28}
    frame_b = {600: 7, 800: 10, 1000: 12, 1200: 15, 1400: 17, 1600: 20, 1800: 22}  # floor(12.5 t)
    expected = {
        **{f"proc_a_{t:08d}": video_a[i] for t, i in frame_a.items()},
        **{f"proc_b_{t:08d}": np.asarray(Image.open(source / "proc_b" / "frames" / f"{i:06d}.png")) for t, i in frame_b.items()},
        **{f"proc_c_{t:08d}": video_c[t // 100] for t in (0, 200, 400, 600, 800)},
    }
    samples = by_id(card)
    assert set(samples) == set(expected)
    for sample_id, image in expected.items():
        stored = np.asarray(Image.open(card.root / samples[sample_id].image))
        np.testing.assert_array_equal(stored, image, err_msg=sample_id)
        assert (samples[sample_id].width, samples[sample_id].height) == (image.shape[1], image.shape[0])
    # the frames really differ, so the comparison above can tell them apart
    assert len({video_a[i].tobytes() for i in frame_a.values()}) == len(frame_a)


def test_default_split_is_recorded(source: Path, tmp_path: Path):
    card = read_dataset(build_ent_fess(source, tmp_path / "ds", seed=3))
    # whole procedures in the order of sha256("<seed>:<name>"): the first is test, the next val
    order = sorted(["proc_a", "proc_b", "proc_c"], key=lambda name: hashlib.sha256(f"3:{name}".encode()).hexdigest())
    expected = {"train": [order[2]], "val": [order[1]], "test": [order[0]]}
    parameters = card.meta["build_parameters"]
    rule = "whole procedures in hash_order(procedures, seed): 20% test, 10% val (at least one each), the rest train"
    assert parameters["split"] == {"source": "default procedure split", "rule": rule, "seed": 3, **expected}
    assert parameters["seed"] == 3
    assert {sample.sequence: sample.split for sample in card.samples} == {
        name: split for split, names in expected.items() for name in names
    }


def test_split_file_may_leave_a_procedure_out(source: Path, tmp_path: Path):
    split_file = write_split(tmp_path / "split.json", {"train": ["proc_a"], "test": ["proc_b"]})
    card = read_dataset(build_ent_fess(source, tmp_path / "ds", split_file=split_file, options=BuildOptions(allow_empty_splits=True)))
    assert {sample.sequence for sample in card.samples} == {"proc_a", "proc_b"}
    assert card.meta["skipped"]["procedure not in the split file"] == {"count": 1, "examples": ["proc_c"]}
    assert card.meta["source"]["counts"]["procedures"] == 3


def test_other_rate(source: Path, tmp_path: Path):
    card = read_dataset(build_ent_fess(source, tmp_path / "ds", rate=4, split_file=write_split(tmp_path / "split.json")))
    # a grid of 250 ms: proc_a's activities [0.2, 1.0), [1.05, 1.6), [2, 2.999); the first sentence at 0.4 s
    times = [int(s.frame) for s in card.samples if s.sequence == "proc_a"]
    assert times == [500, 750, 1250, 1500, 2000, 2250, 2500, 2750]
    assert card.meta["skipped"]["frame before the first report sentence"]["examples"][0] == "proc_a_00000250"
    assert card.meta["build_parameters"]["rate_fps"] == 4


def test_procedure_names_that_are_not_file_names_still_give_a_readable_dataset(source: Path, tmp_path: Path):
    (source / "proc_c").rename(source / "Fall 3")
    split_file = write_split(tmp_path / "split.json", {"train": ["proc_a"], "val": ["Fall 3"], "test": ["proc_b"]})
    card = read_dataset(build_ent_fess(source, tmp_path / "ds", split_file=split_file))
    val = card.split("val")
    assert [sample.sample_id for sample in val][:2] == ["Fall-3_00000000", "Fall-3_00000200"]
    assert {sample.sequence for sample in val} == {"Fall 3"}
    assert (card.root / val[0].image).is_file()


# --- refusals ------------------------------------------------------------------------------


def rewrite_activities(rows, procedure: str = "proc_a", header=ACTIVITY_HEADER):
    def change(root: Path) -> None:
        write_table(root / procedure / "activities.csv", header, rows)

    return change


def rewrite_report(rows):
    def change(root: Path) -> None:
        write_table(root / "proc_a" / "report.csv", ("time", "keyword", "sentence"), rows)

    return change


def write_file(relative: str, text: str):
    def change(root: Path) -> None:
        (root / relative).write_text(text, encoding="utf-8")

    return change


def remove(relative: str):
    def change(root: Path) -> None:
        (root / relative).unlink()

    return change


def add_frames_to_proc_a(root: Path) -> None:
    write_frames(root / "proc_a", 30, 10)


def frames_without_video(root: Path) -> None:
    (root / "proc_a" / "video.mp4").unlink()
    (root / "proc_a" / "frames").mkdir()


ACT = "proc_a/activities.csv"
REP = "proc_a/report.csv"
ROW = ("0.2", "1.0", "septum", "Aktuell.", "Als Nächstes.")

REFUSALS = {
    "overlap": (
        rewrite_activities([("1.5", "2.5", "concha", "B.", "C."), ("0.2", "1.6", "septum", "A.", "B.")]),
        f"{ACT}: line 2: overlaps the activity of line 3",
    ),
    "end equals start": (rewrite_activities([ROW, ("1.5", "1.500", "", "A.", "B.")]), f"{ACT}: line 3: end 1.500 must be after start 1.5"),
    "after a blank line and a row over two lines": (
        write_file(ACT, 'start,end,landmarks,current,next\n0,1,"septum|\nostium",A.,B.\n\n2,1,,A.,B.\n'),
        f"{ACT}: line 5: end 1 must be after start 2",
    ),
    "end before start": (rewrite_activities([("2", "1", "", "A.", "B.")]), f"{ACT}: line 2: end 1 must be after start 2"),
    "four decimals": (
        rewrite_activities([ROW, ("1.2345", "2", "", "A.", "B.")]),
        f"{ACT}: line 3: start '1.2345' is not a time in seconds >= 0 with at most 3 decimals",
    ),
    "negative time": (
        rewrite_activities([("0", "-1", "", "A.", "B.")]),
        f"{ACT}: line 2: end '-1' is not a time in seconds >= 0 with at most 3 decimals",
    ),
    "unknown landmark": (
        rewrite_activities([("0", "1", "septum|nose", "A.", "B.")]),
        f"{ACT}: line 2: landmark 'nose' is not in landmarks.txt",
    ),
    "landmark twice": (
        rewrite_activities([("0", "1", "septum|concha|septum", "A.", "B.")]),
        f"{ACT}: line 2: landmark 'septum' is listed twice",
    ),
    "empty current": (rewrite_activities([ROW, ("1.2", "2", "", " ", "B.")]), f"{ACT}: line 3: current is empty"),
    "empty next": (rewrite_activities([("0", "1", "", "A.", "")]), f"{ACT}: line 2: next is empty"),
    "control character": (
        rewrite_activities([ROW, ("1.2", "2", "", "Blut\tung.", "B.")]),
        f"{ACT}: line 3: current holds the control character U+0009",
    ),
    "line break in a text": (
        rewrite_activities([("0", "1", "", "A.", "Zwei\nZeilen."), ("1", "2", "", "Weiter.", "B.")]),
        f"{ACT}: line 2: next holds the control character U+000A",  # the line where the row starts
    ),
    "activities header": (
        rewrite_activities([("0", "1", "", "A.")], header=("start", "end", "landmarks", "current")),
        f"{ACT}: header must hold exactly the columns start,end,landmarks,current,next (found: start,end,landmarks,current)",
    ),
    "activities field count": (
        write_file(ACT, "start,end,landmarks,current,next\n0,1,,A.,B.,extra\n"),
        f"{ACT}: line 2: expected 5 fields, found 6",
    ),
    "no activity": (write_file(ACT, "start,end,landmarks,current,next\n"), f"{ACT}: holds no activity"),
    "report header": (
        write_file(REP, "time,keyword,sentence,speaker\n0.4,Inspektion,Inspektion.,HNO\n"),
        f"{REP}: header must hold exactly the columns time,keyword,sentence (found: time,keyword,sentence,speaker)",
    ),
    "report times equal": (
        rewrite_report([("0.4", "Inspektion", "A."), ("0.400", "Uncinektomie", "B.")]),
        f"{REP}: line 3: times must increase from row to row",
    ),
    "report times decreasing": (
        rewrite_report([("0.4", "Inspektion", "A."), ("1", "Uncinektomie", "B."), ("0.9", "Tamponade", "C.")]),
        f"{REP}: line 4: times must increase from row to row",
    ),
    "keyword without letters": (
        rewrite_report([("0.4", "--", "A.")]),
        f"{REP}: line 2: keyword '--' has no letter or digit",
    ),
    "empty sentence": (rewrite_report([("0.4", "Inspektion", "")]), f"{REP}: line 2: sentence is empty"),
    "no report sentence": (write_file(REP, "time,keyword,sentence\n"), f"{REP}: holds no report sentence"),
    "report missing": (remove(REP), f"{REP}: missing"),
    "activity after the end of the video": (
        rewrite_activities([ROW, ("2", "3.001", "", "A.", "B.")]),
        f"{ACT}: line 3: ends at 3.001 s, after the recording (3.000 s)",
    ),
    "activity after the last frame": (
        rewrite_activities([("0", "2.001", "", "A.", "B.")], procedure="proc_b"),
        "proc_b/activities.csv: line 2: ends at 2.001 s, after the recording (2.000 s)",
    ),
    "video and frames": (
        add_frames_to_proc_a,
        "proc_a: needs exactly one recording: video.<mp4|mkv|mov|avi|webm> or frames/ with frames.json (found: video.mp4, frames/)",
    ),
    "two videos": (
        lambda root: write_video(root / "proc_a" / "video.mkv", 30),
        "proc_a: needs exactly one recording: video.<mp4|mkv|mov|avi|webm> or frames/ with frames.json (found: video.mkv, video.mp4)",
    ),
    "no recording": (
        remove("proc_a/video.mp4"),
        "proc_a: needs exactly one recording: video.<mp4|mkv|mov|avi|webm> or frames/ with frames.json (found: none)",
    ),
    "frames.json next to a video": (
        lambda root: (root / "proc_a" / "frames.json").write_text('{"fps": 10}'),
        "proc_a/frames.json: belongs to a frames/ folder, but the recording is video.mp4",
    ),
    "frames.json missing": (remove("proc_b/frames.json"), "proc_b/frames.json: missing: frames/ needs it to give the frame rate"),
    "frames.json other keys": (
        write_file("proc_b/frames.json", '{"fps": 12.5, "start": 0}'),
        'proc_b/frames.json: must be {"fps": <frames per second>}',
    ),
    "frames.json a list": (write_file("proc_b/frames.json", "[12.5]"), 'proc_b/frames.json: must be {"fps": <frames per second>}'),
    "frames.json fps text": (
        write_file("proc_b/frames.json", '{"fps": "12.5"}'),
        "proc_b/frames.json: fps must be a positive number, got '12.5'",
    ),
    "frames.json fps zero": (write_file("proc_b/frames.json", '{"fps": 0}'), "proc_b/frames.json: fps must be a positive number, got 0"),
    "frames.json not JSON": (write_file("proc_b/frames.json", "fps: 12.5"), "proc_b/frames.json: not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    "frames folder gap": (remove("proc_b/frames/000007.png"), "proc_b/frames: frames must be numbered from 000000 without gaps: 000007.png is missing"),
    "frames folder without video": (frames_without_video, "proc_a/frames.json: missing: frames/ needs it to give the frame rate"),
    "landmarks duplicate": (write_file("landmarks.txt", "ostium\nconcha\nostium\n"), "landmarks.txt: landmarks names occur twice: ostium"),
    "landmarks separator": (
        write_file("landmarks.txt", "ostium\nconcha|septum\n"),
        "landmarks.txt: landmarks names may not contain '|' or surrounding spaces: 'concha|septum'",
    ),
    "landmarks empty": (write_file("landmarks.txt", "\n\n"), "landmarks.txt: landmarks must be a non-empty list of non-empty names"),
    "landmarks missing": (remove("landmarks.txt"), "landmarks.txt: missing"),
}


def refused_build(source: Path, out: Path, **kwargs) -> str:
    with pytest.raises(InputError) as refused:
        build_ent_fess(source, out, **kwargs)
    message = str(refused.value)
    assert "\n" not in message
    assert not out.exists()
    assert [path.name for path in out.parent.iterdir() if path.name.startswith(f".{out.name}")] == []
    return message


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_name_the_file_and_line(source: Path, tmp_path: Path, case: str):
    change, expected = REFUSALS[case]
    change(source)
    split_file = write_split(tmp_path / "split.json")
    assert refused_build(source, tmp_path / "ds", split_file=split_file) == f"{source}/{expected}"


def test_refusal_of_a_file_that_is_not_utf8(source: Path, tmp_path: Path):
    (source / REP).write_bytes("time,keyword,sentence\n0.4,Inspektion,Gr\xf6\xdfe.\n".encode("latin-1"))
    assert refused_build(source, tmp_path / "ds", split_file=write_split(tmp_path / "split.json")) == (
        f"{source / REP}: not UTF-8 text (byte 39)"
    )


def test_refusal_of_a_file_that_is_not_a_video(source: Path, tmp_path: Path):
    (source / "proc_c" / "video.mkv").write_text("not a video")
    message = refused_build(source, tmp_path / "ds", split_file=write_split(tmp_path / "split.json"))
    assert message.startswith(f"{source / 'proc_c' / 'video.mkv'}: cannot be read as a video (")


@pytest.mark.parametrize("workers", [1, 2])
def test_refusal_while_writing_leaves_nothing(source: Path, tmp_path: Path, workers: int):
    """A frame that cannot be read is found only when it is converted, inside the output's staging folder."""
    (source / "proc_b" / "frames" / "000015.png").write_bytes(b"not a PNG")
    options = BuildOptions(workers=workers)
    message = refused_build(source, tmp_path / "ds", split_file=write_split(tmp_path / "split.json"), options=options)
    assert message.startswith(f"{source / 'proc_b' / 'frames' / '000015.png'}: corrupt or unreadable image (")


def test_refusal_of_a_split_file_naming_an_unknown_procedure(source: Path, tmp_path: Path):
    split_file = write_split(tmp_path / "split.json", {"train": ["proc_a", "proc_x"], "val": ["proc_c"], "test": ["proc_b", "notes"]})
    assert refused_build(source, tmp_path / "ds", split_file=split_file) == (
        f"{split_file}: names procedures that are not in {source}: notes, proc_x"
    )


@pytest.mark.parametrize("rate", [3, 0, -5, 7, 2000, 5.0, True, "5"])
def test_refusal_of_a_rate_not_dividing_1000(source: Path, tmp_path: Path, rate):
    assert refused_build(source, tmp_path / "ds", rate=rate) == (
        f"--rate: must be a whole number of frames per second dividing 1000 (1, 2, 4, 5, 8, 10, ...), got {rate!r}"
    )


def test_refusal_of_a_missing_source(tmp_path: Path):
    assert refused_build(tmp_path / "nowhere", tmp_path / "ds") == f"{tmp_path / 'nowhere'}: FESS source folder not found"


def test_refusal_of_a_source_without_procedures(tmp_path: Path):
    (tmp_path / "fess").mkdir()
    (tmp_path / "fess" / "landmarks.txt").write_text("ostium\n")
    assert refused_build(tmp_path / "fess", tmp_path / "ds") == f"{tmp_path / 'fess'}: no procedure folder with activities.csv found"


def test_refusal_leaves_an_existing_output_untouched(source: Path, tmp_path: Path):
    out = build_ent_fess(source, tmp_path / "ds", split_file=write_split(tmp_path / "split.json"))
    before = tree_digest(out)
    rewrite_report([("0.4", "--", "A.")])(source)
    with pytest.raises(InputError):
        build_ent_fess(source, out, split_file=tmp_path / "split.json", options=BuildOptions(overwrite=True))
    assert tree_digest(out) == before


# --- the demo export ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory) -> Path:
    return write_fess(tmp_path_factory.mktemp("demo") / "fess", 0, silent)


def test_demo_builds_are_byte_identical_with_one_and_two_workers(demo_source: Path, tmp_path: Path):
    one = build_ent_fess(demo_source, tmp_path / "one", options=BuildOptions(workers=1))
    two = build_ent_fess(demo_source, tmp_path / "two", options=BuildOptions(workers=2))
    digest = tree_digest(one)
    assert digest == tree_digest(two)
    card = read_dataset(one)
    assert {sample.sequence for sample in card.samples} == {f"fess{n:02d}" for n in range(1, 7)}
    assert card.meta["skipped"]["frame before the first report sentence"]["count"] > 0
    assert any(sample.labels["landmarks"] == () for sample in card.samples if sample.sequence == "fess03")
    assert "fess06/frames.json" in card.meta["source"]["inputs_sha256"]
    assert len(digest) == len(card.samples) + 2  # images, samples.csv and dataset.json
