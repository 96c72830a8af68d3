"""Leaderboards: the multi-seed runs, the protocol's refusals (one per rule), the summaries against
hand-computed values, submissions from outside, and the renderings (docs/leaderboards.md)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import TINY_RUN, write_endovis_source

from baselines.seeds import plan_seeds, run_seeds
from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.builders.mtlendovis_gen import build_mtlendovis_gen
from mtlbench.errors import InputError
from mtlbench.leaderboard.add import AddOptions, add_entry
from mtlbench.leaderboard.board import read_board
from mtlbench.leaderboard.render import render
from mtlbench.run_record import config_sha256

TINY = [*TINY_RUN, "train.epochs=1"]
KEPT = ("run.json", "config.json", "results.json", "plots", "predictions", "gen")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A tiny dataset and a three-seed run of endoarss-tiny on it (seconds)."""
    root = tmp_path_factory.mktemp("leaderboard")
    dataset = build_mtlendovis(write_endovis_source(root), root / "ds")
    gen = build_mtlendovis_gen(dataset, root / "gen", corruptions=("gaussian_blur", "bleeding"), severities=(1, 5))
    run_seeds(plan_seeds("endoarss-tiny", TINY, root / "runs", [0, 1, 2], overwrite=False), dataset, gen=gen)
    return {"dataset": dataset, "runs": root / "runs"}


def copy_seeds(trained: dict, target: Path, seeds=(0, 1, 2)) -> list[Path]:
    folders = []
    for seed in seeds:
        source, folder = trained["runs"] / f"seed-{seed}", target / f"seed-{seed}"
        folder.mkdir(parents=True)
        for name in KEPT:
            (shutil.copytree if (source / name).is_dir() else shutil.copyfile)(source / name, folder / name)
        folders.append(folder)
    return folders


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def set_config(folder: Path, section: str, key: str, value) -> None:
    """Change a setting in config.json and the configuration hash in run.json alike."""
    edit(folder / "config.json", lambda config: config[section].__setitem__(key, value))
    digest = config_sha256(json.loads((folder / "config.json").read_text()))
    edit(folder / "run.json", lambda record: record.__setitem__("config_sha256", digest))


def make_comparable(folder: Path) -> None:
    def change(record):
        record.update(comparable=True, pretrained_weights=[{"file": "dinov2_vits14_pretrain.pth", "sha256": "ab" * 32}],
                      git={"commit": COMMIT, "dirty": False})

    edit(folder / "run.json", change)


def set_metrics(folder: Path, values: dict[str, float]) -> None:
    def change(results):
        for name, value in values.items():
            task, metric = name.split(".")
            results[task][metric] = value

    edit(folder / "results.json", change)


def options(tmp_path: Path, **settings) -> AddOptions:
    return AddOptions(**{"board": "board", "boards_dir": tmp_path / "boards", **settings})


def test_an_entry_reports_mean_std_and_each_seeds_interval(trained, tmp_path: Path):
    board, entry = add_entry([trained["runs"]], options(tmp_path, new=True, demo=True))
    results = [json.loads((trained["runs"] / f"seed-{seed}" / "results.json").read_text()) for seed in (0, 1, 2)]
    assert [seed["seed"] for seed in entry["seeds"]] == [0, 1, 2]
    assert board["headline_metrics"] == ["activity.accuracy", "activity.macro_f1", "segmentation.miou", "segmentation.pixel_accuracy"]
    for name in board["headline_metrics"]:
        task, metric = name.split(".")
        values = [r[task][metric] for r in results]
        assert entry["summary"]["metrics"][name]["mean"] == pytest.approx(statistics.mean(values), abs=1e-12)
        assert entry["summary"]["metrics"][name]["std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
        assert [seed["ci"][name] for seed in entry["seeds"]] == [r[task]["ci"].get(metric) for r in results]
    provenance = entry["seeds"][0]["provenance"]
    for key in ("config_sha256", "git", "device_name", "training_seconds", "evaluator_version", "selection_split", "weights"):
        assert key in provenance
    assert board["dataset"]["fingerprint"] == json.loads((trained["dataset"] / "dataset.json").read_text())["fingerprint"]
    assert read_board(tmp_path / "boards" / "board.json") == board  # the file reads back as written


def test_delta_m_and_p_against_the_single_task_baseline_by_hand(trained, tmp_path: Path):
    baseline = copy_seeds(trained, tmp_path / "baseline", seeds=(0,))[0]
    set_config(baseline, "model", "architecture", "single_task")
    set_metrics(baseline, {"activity.accuracy": 0.5, "activity.macro_f1": 0.25, "segmentation.miou": 0.4, "segmentation.pixel_accuracy": 0.8})
    seeds = copy_seeds(trained, tmp_path / "mtl")
    chosen = [(0.6, 0.25, 0.3, 0.8), (0.5, 0.3, 0.44, 0.8), (0.45, 0.25, 0.4, 0.84)]
    for folder, (acc, f1, miou, pa) in zip(seeds, chosen):
        set_metrics(folder, {"activity.accuracy": acc, "activity.macro_f1": f1, "segmentation.miou": miou, "segmentation.pixel_accuracy": pa})
    add_entry([baseline], options(tmp_path, new=True, demo=True, allow_fewer_seeds=True, single_task_baseline=True, name="single-task"))
    board, entry = add_entry([tmp_path / "mtl"], options(tmp_path))
    # relative changes in percent: seed 0 (+20, 0, -25, 0), seed 1 (0, +20, +10, 0), seed 2 (-10, 0, 0, +5)
    delta_m = [-5 / 4, 30 / 4, -5 / 4]
    delta_p = [(10 + -12.5) / 2, (10 + 5) / 2, (-5 + 2.5) / 2]
    assert entry["summary"]["delta_m"]["mean"] == pytest.approx(statistics.mean(delta_m))
    assert entry["summary"]["delta_m"]["std"] == pytest.approx(statistics.stdev(delta_m))
    assert entry["summary"]["delta_p"]["mean"] == pytest.approx(statistics.mean(delta_p))
    assert board["single_task_baselines"] == ["single-task"]
    assert next(e for e in board["entries"] if e["id"] == "single-task")["summary"]["delta_m"] is None


def refuse(sources, opts: AddOptions, *fragments: str) -> None:
    with pytest.raises(InputError) as caught:
        add_entry(sources, opts)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_each_protocol_violation_is_refused(trained, tmp_path: Path):
    board = options(tmp_path, new=True, demo=True)
    real = options(tmp_path, board="real", new=True)

    refuse([trained["runs"] / "seed-0", trained["runs"] / "seed-1"], board, "2 seed(s)", "at least 3", "--allow-fewer-seeds")
    refuse([trained["runs"] / "seed-0", trained["runs"] / "seed-0", trained["runs"] / "seed-1"], board, "seed 0 is also the seed of")

    def violated(name: str, change) -> list[Path]:
        folders = copy_seeds(trained, tmp_path / name)
        change(folders[2])
        return folders

    refuse(violated("fingerprint", lambda f: edit(f / "results.json", lambda r: r["dataset"].__setitem__("fingerprint", "f" * 64))),
           board, "fingerprint")
    refuse(violated("record-fingerprint", lambda f: edit(f / "run.json", lambda r: r["dataset"].__setitem__("fingerprint", "f" * 64))),
           board, "test results computed on dataset")
    refuse(violated("split", lambda f: edit(f / "results.json", lambda r: r["dataset"].__setitem__("split", "val"))),
           board, "split 'val', not on 'test'")
    refuse(violated("evaluator", lambda f: edit(f / "results.json", lambda r: r["evaluator"].__setitem__("version", "1.1.0"))),
           board, "evaluator version")
    refuse(violated("config", lambda f: set_config(f, "optim", "lr", 0.5)), board, "configuration (config_sha256)")
    refuse(violated("tampered", lambda f: edit(f / "config.json", lambda c: c["optim"].__setitem__("lr", 0.5))),
           board, "does not match config.json")
    refuse(violated("selection", lambda f: edit(f / "run.json", lambda r: r.__setitem__("selection_split", "test"))),
           board, "selection must use 'val' only")
    refuse(violated("unfinished", lambda f: (f / "results.json").unlink()), board, "has not finished")
    refuse(violated("old-record", lambda f: edit(f / "run.json", lambda r: r.pop("format_version"))), board, "format_version")
    refuse(violated("no-time", lambda f: edit(f / "run.json", lambda r: r.pop("training_seconds"))), board, "no training_seconds")

    refuse([trained["runs"]], real, "NOT COMPARABLE", "demo boards")
    comparable = copy_seeds(trained, tmp_path / "comparable")
    for folder in comparable:
        make_comparable(folder)
    edit(comparable[1] / "run.json", lambda r: r["git"].__setitem__("dirty", True))
    refuse(comparable, real, "uncommitted changes")
    edit(comparable[1] / "run.json", lambda r: r["git"].update(commit=None, dirty=None))
    refuse(comparable, real, "no commit recorded")
    edit(comparable[1] / "run.json", lambda r: r["git"].update(commit=COMMIT, dirty=False))
    add_entry(comparable, real)  # the same runs, now keeping the protocol, are taken

    add_entry([trained["runs"]], board)
    refuse([trained["runs"]], options(tmp_path), "the same configuration", "--replace")
    other = options(tmp_path, board="other", new=True, demo=True)
    add_entry([trained["runs"]], other)
    foreign = copy_seeds(trained, tmp_path / "foreign")
    for folder in foreign:
        edit(folder / "run.json", lambda r: r["dataset"].__setitem__("fingerprint", "e" * 64))
        edit(folder / "results.json", lambda r: r["dataset"].__setitem__("fingerprint", "e" * 64))
        set_config(folder, "optim", "lr", 0.25)
    refuse(foreign, options(tmp_path, board="other"), "but board 'other' is for")
    refuse([trained["runs"]], options(tmp_path, board="missing"), "no board 'missing'", "--new")


def test_a_board_edited_by_hand_is_refused_and_nothing_half_written_remains(trained, tmp_path: Path):
    add_entry([trained["runs"]], options(tmp_path, new=True, demo=True))
    path = tmp_path / "boards" / "board.json"
    before = path.read_bytes()
    refuse([tmp_path / "nowhere"], options(tmp_path), "not found")
    assert path.read_bytes() == before and sorted(p.name for p in (tmp_path / "boards").iterdir()) == ["board", "board.json"]
    edit(path, lambda b: b["entries"][0]["summary"]["metrics"]["activity.accuracy"].__setitem__("mean", 0.99))
    with pytest.raises(InputError, match="not what its seeds give"):
        read_board(path)


def test_a_submission_from_outside_goes_through_the_same_validation(trained, tmp_path: Path):
    outside = tmp_path / "outside"
    for seed in (0, 1, 2):
        folder = outside / f"seed-{seed}"
        folder.mkdir(parents=True)
        shutil.copyfile(trained["runs"] / f"seed-{seed}" / "run.json", folder / "run.json")
        shutil.copytree(trained["runs"] / f"seed-{seed}" / "predictions", folder / "predictions")
    with zipfile.ZipFile(tmp_path / "seed-2.zip", "w") as archive:  # one seed as a predictions zip with its run.json
        archive.write(outside / "seed-2" / "run.json", "run.json")
        for path in sorted((outside / "seed-2" / "predictions").rglob("*")):
            archive.write(path, str(path.relative_to(outside / "seed-2" / "predictions")))
    shutil.rmtree(outside / "seed-2")
    sources = [outside / "seed-0", outside / "seed-1", tmp_path / "seed-2.zip"]
    refuse(sources, options(tmp_path, new=True, demo=True), "give --dataset")
    _, entry = add_entry(sources, options(tmp_path, new=True, demo=True, dataset=trained["dataset"]))
    _, ours = add_entry([trained["runs"]], options(tmp_path, board="ours", new=True, demo=True))
    assert [s["metrics"] for s in entry["seeds"]] == [s["metrics"] for s in ours["seeds"]]
    assert [s["ci"] for s in entry["seeds"]] == [s["ci"] for s in ours["seeds"]]
    assert all(seed["pictures"] for seed in entry["seeds"])


def test_render_writes_markdown_and_a_site_byte_identical_on_a_rerender(trained, tmp_path: Path):
    add_entry([trained["runs"]], options(tmp_path, new=True, demo=True, title="Demo board"))
    markdown, _ = render(tmp_path / "boards", tmp_path / "site")
    text = markdown[0].read_text()
    assert "NOT COMPARABLE" in text and "| 1 | endoarss-tiny | 3 |" in text
    first = {p.relative_to(tmp_path): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    render(tmp_path / "boards", tmp_path / "site")
    assert {p.relative_to(tmp_path): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == first
    page = (tmp_path / "site" / "board.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing fetched at view time
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a site written by leaderboard render"):
        render(tmp_path / "boards", tmp_path / "elsewhere")


def test_the_cli_refuses_in_one_line_and_adds(trained, tmp_path: Path):
    def mtlbench(*args):
        return subprocess.run([sys.executable, "-m", "mtlbench", *map(str, args)], capture_output=True, text=True, timeout=120)

    boards = tmp_path / "boards"
    result = mtlbench("leaderboard", "add", trained["runs"] / "seed-0", "--board", "demo", "--boards-dir", boards, "--new", "--demo")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1 and "at least 3" in result.stderr
    assert not boards.exists() or not any(boards.iterdir())
    result = mtlbench("leaderboard", "add", trained["runs"], "--board", "demo", "--boards-dir", boards, "--new", "--demo")
    assert result.returncode == 0, result.stderr
    assert "added endoarss-tiny (seeds 0, 1, 2) to board demo" in result.stdout
    result = mtlbench("leaderboard", "render", "--boards-dir", boards)
    assert result.returncode == 0 and (boards / "site" / "index.html").is_file() and (boards / "demo.md").is_file()


def test_run_baseline_seeds_skips_finished_seeds_and_refuses_another_configuration(trained, tmp_path: Path):
    runs = tmp_path / "runs"
    shutil.copytree(trained["runs"], runs)
    plans = plan_seeds("endoarss-tiny", TINY, runs, [0, 1, 2], overwrite=False)
    assert [plan.state for plan in plans] == ["finished"] * 3
    assert run_seeds(plans, trained["dataset"]) == [None, None, None]
    with pytest.raises(InputError, match="holds a run of another configuration"):
        plan_seeds("endoarss-tiny", [*TINY, "optim.lr=0.5"], runs, [0], overwrite=False)
    with pytest.raises(InputError, match="a seed is named twice"):
        plan_seeds("endoarss-tiny", TINY, runs, [3, 3], overwrite=False)
    (runs / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a multi-seed run folder"):
        plan_seeds("endoarss-tiny", TINY, runs, [0], overwrite=False)


def test_robustness_summaries_by_hand(trained, tmp_path: Path):
    """mPC and rPC as the seeds report them; mCE against the reference entry's tables averaged over its seeds."""
    metric = "segmentation.miou"
    chosen = [[0.6, 0.4, 0.5, 0.3], [0.7, 0.5, 0.6, 0.2], [0.5, 0.3, 0.4, 0.1]]  # per seed, per condition of the table
    folders = copy_seeds(trained, tmp_path / "runs")
    for folder, values in zip(folders, chosen):
        def change(results, values=values):
            summary = results["robustness"]
            for row, value in zip(summary["table"], values):
                row[metric] = value
            summary["clean"][metric] = 0.8
            summary["mpc"][metric] = statistics.mean(values)
            summary["rpc"][metric] = statistics.mean(values) / 0.8

        edit(folder / "gen" / "results.json", change)
    board, entry = add_entry(folders, options(tmp_path, new=True, demo=True, robustness_reference=True))
    robustness = entry["summary"]["robustness"]
    assert robustness["mpc"][metric]["mean"] == pytest.approx(statistics.mean(statistics.mean(v) for v in chosen))
    assert robustness["rpc"][metric]["std"] == pytest.approx(statistics.stdev(statistics.mean(v) / 0.8 for v in chosen))
    assert board["robustness_reference"] == "endoarss-tiny" and board["robustness_set"]["name"] == "mtlendovis-gen"
    conditions = [(row["corruption"], row["severity"]) for row in entry["seeds"][0]["robustness"]["table"]]
    reference = [statistics.mean(values[i] for values in chosen) for i in range(4)]

    def mce(values):  # CE_c = sum over severities of (1 - P) / sum of (1 - P_ref); mCE: mean over corruptions
        corruptions = sorted({c for c, _ in conditions})
        return statistics.mean(
            sum(1 - values[i] for i, (c, _) in enumerate(conditions) if c == corruption)
            / sum(1 - reference[i] for i, (c, _) in enumerate(conditions) if c == corruption)
            for corruption in corruptions
        )

    assert robustness["mce"][metric]["mean"] == pytest.approx(statistics.mean(mce(v) for v in chosen))
    assert robustness["mce"][metric]["std"] == pytest.approx(statistics.stdev(mce(v) for v in chosen))


def test_the_site_in_headless_chromium(trained, tmp_path: Path):
    """Loads without console errors, sorting a column reorders the rows, every link and picture resolves."""
    from browser import Browser, chromium_path

    executable = chromium_path()
    accuracies = {"low": 0.2, "high": 0.9, "middle": 0.5}
    for lr, (name, accuracy) in enumerate(accuracies.items(), 1):
        folders = copy_seeds(trained, tmp_path / name)
        for index, folder in enumerate(folders):
            set_config(folder, "optim", "lr", lr / 10)
            set_metrics(folder, {"activity.accuracy": accuracy + index / 100})
        add_entry(folders, options(tmp_path, new=lr == 1, demo=lr == 1, name=name, robustness_reference=lr == 1))
    site = tmp_path / "site"
    render(tmp_path / "boards", site)
    browser = Browser(executable)
    try:
        browser.open(site / "index.html")
        assert browser.errors() == []
        browser.open(site / "board.html")
        assert browser.errors() == []
        order = "Array.from(document.querySelectorAll('#board > tbody > tr.entry')).map(row => row.dataset.id)"
        assert browser.evaluate(order) == ["high", "middle", "low"]  # ranked by the first headline metric
        column = browser.evaluate("Array.from(document.querySelectorAll('#board thead th')).findIndex(th => th.dataset.metric === 'activity.accuracy')")
        browser.evaluate("document.querySelectorAll('#board thead th button.sort')[1].click()")  # by name, A to Z
        assert browser.evaluate(order) == ["high", "low", "middle"]
        browser.evaluate(f"document.querySelectorAll('#board thead th button.sort')[{column}].click()")
        assert browser.evaluate(order) == ["high", "middle", "low"]
        browser.evaluate(f"document.querySelectorAll('#board thead th button.sort')[{column}].click()")
        assert browser.evaluate(order) == ["low", "middle", "high"]
        rows = "Array.from(document.querySelector('#board > tbody').children).map(r => r.className)"
        assert browser.evaluate(rows) == ["entry", "details"] * 3  # each details row moved with its entry
        browser.evaluate("document.querySelector('input.filter').value = 'midd'; document.querySelector('input.filter').dispatchEvent(new Event('input'))")
        assert browser.evaluate("Array.from(document.querySelectorAll('#board tr.entry')).filter(r => !r.hidden).map(r => r.dataset.id)") == ["middle"]
        browser.evaluate("document.querySelector('input.filter').value = ''; document.querySelector('input.filter').dispatchEvent(new Event('input'))")
        browser.evaluate("document.querySelector('button.expand').click()")
        assert browser.evaluate("document.querySelector('tr.details').hidden") is False
        links = browser.evaluate("Array.from(document.querySelectorAll('a[href], img[src]')).map(e => e.href || e.src)")
        assert links and all(link.startswith("file://") for link in links)
        for link in links:
            assert Path(link.removeprefix("file://")).is_file(), link
        broken = "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
        browser.evaluate("document.querySelectorAll('button.expand').forEach(b => b.getAttribute('aria-expanded') === 'false' && b.click())")
        browser.evaluate("Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))")
        assert browser.evaluate(broken) == []
        browser.screenshot(tmp_path / "board.png")
        assert (tmp_path / "board.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        keep = os.environ.get("MTLBENCH_SCREENSHOTS")
        if keep:
            shutil.copyfile(tmp_path / "board.png", Path(keep) / "board.png")
        assert browser.errors() == []
    finally:
        browser.close()


def test_the_committed_boards_read_and_their_markdown_is_current():
    from mtlbench.leaderboard.board import list_boards
    from mtlbench.leaderboard.markdown import render_markdown

    boards_dir = Path(__file__).resolve().parent.parent / "leaderboards"
    paths = list_boards(boards_dir)
    assert [path.stem for path in paths] == ["ent-fess", "mtlendovis", "mtlesd", "pitvqa"]
    for path in paths:
        assert path.with_suffix(".md").read_text() == render_markdown(read_board(path)), f"rerun mtlbench leaderboard render for {path}"
