"""The vision-language presets train, select, generate, write a submission and score it on the demo
FESS and PitVQA sets, as shrunken copies of themselves (same architecture and switches, tiny
shapes); ablations name what they removed; the CLI refuses what it cannot train in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from baselines.config import load_config, preset_names
from baselines.run import run_baseline
from mtlbench.demo.fess import write_fess
from mtlbench.demo.pitvqa import write_pitvqa
from mtlbench.errors import InputError
from mtlbench.progress import silent

VL_PRESETS = [name for name in preset_names() if load_config(name).model.architecture in ("vlm", "bilstm-seq2seq", "lv-gpt")]
SHRINK = [
    "data.input_size=[112,112]", "data.batch_size=8", "data.eval_batch_size=64",
    "model.encoder.depth=1", "model.encoder.embed_dim=48", "model.encoder.num_heads=2",
    "model.text.hidden=32", "model.text.layers=1", "model.text.heads=2", "model.text.max_tokens=24",
    "model.decoder.width=32", "model.decoder.heads=2", "model.decoder.layers=1", "model.decoder.max_length=6",
    "model.gpt2.layers=1", "model.gpt2.width=32", "model.gpt2.heads=2",
    "train.epochs=1", "train.max_steps_per_epoch=2", "train.precision=fp32",
]


def cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtlbench", *arguments], capture_output=True, text=True)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vl")
    write_fess(root / "fess-source", seed=0, progress=silent)
    write_pitvqa(root / "pitvqa-source", seed=0, progress=silent)
    for name, source, extra in (("ent-fess", "fess-source", ["--rate", "1"]), ("pitvqa", "pitvqa-source", [])):
        built = cli("build-dataset", name, "--source", str(root / source), "--out", str(root / name), "-q", *extra)
        assert built.returncode == 0, built.stderr
    return {"ent-fess": root / "ent-fess", "pitvqa": root / "pitvqa"}


# What the full model's ablations remove (results.json submission.meta.removed, run.json removed).
REMOVED = {
    "vlm-no-image": ["image embedding", "cross-attention"],
    "vlm-no-text": ["text embedding", "cross-attention"],
    "vlm-no-cross-attention": ["cross-attention"],
    "mono-landmarks": ["text embedding", "cross-attention"],
    "endovit-landmarks": ["text embedding", "cross-attention"],
    "mono-seq2seq": ["image embedding", "cross-attention"],
}
# On PitVQA by default one preset per architecture and task mix; every preset with -m slow.
PITVQA_DEFAULT = ("vlm-small", "mono-landmarks", "mono-bilstm", "lv-gpt")
CASES = [pytest.param(preset, "ent-fess") for preset in VL_PRESETS] + [
    pytest.param(preset, "pitvqa", marks=() if preset in PITVQA_DEFAULT else pytest.mark.slow) for preset in VL_PRESETS
]


@pytest.mark.parametrize("preset, dataset", CASES)
def test_every_vision_language_preset_trains_and_scores(datasets, tmp_path, preset, dataset):
    config = load_config(preset, SHRINK)
    results = run_baseline(config, datasets[dataset], tmp_path / "run")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    trained = json.loads((tmp_path / "run" / "config.json").read_text())["tasks"]
    not_scored = set(results["submission"]["tasks_not_scored"])
    scored = {name: section for name, section in results.items() if isinstance(section, dict) and "null_reasons" in section and name not in not_scored}
    assert trained and set(scored) == set(trained)
    kinds = {"bleu_2": "text", "samples_f1": "multilabel", "accuracy": "classification"}
    scored_kinds = {kind for section in scored.values() for key, kind in kinds.items() if key in section}
    assert scored_kinds <= set(config.task_types)
    if "text" in scored_kinds:
        assert all(section["pairs"] > 0 for section in scored.values() if "bleu_2" in section)
    removed = REMOVED.get(preset, [])
    assert results["submission"]["meta"]["removed"] == record["removed"] == removed
    # comparable unless a pretrainable part is random: every preset has a random image encoder or
    # GPT-2 here, except those that see no image (the text encoder is the real all-MiniLM-L6-v2, the
    # seq2seq and BiLSTM baselines are trained from scratch by design)
    sees_image = config.model.fusion.image and config.model.architecture != "bilstm-seq2seq"
    assert record["parameters"]["total"] > 0 and record["comparable"] is (not sees_image)


@pytest.mark.slow
def test_the_cli_trains_vlm_tiny_and_resumes(datasets, tmp_path):
    out = tmp_path / "run"
    common = ["--dataset", str(datasets["pitvqa"]), "--set", "train.max_steps_per_epoch=2", "--set", "train.epochs=2",
              "--set", "model.decoder.max_length=6", "-q"]
    first = cli("run-baseline", "vlm-tiny", "--out", str(out), "--stop-after-epoch", "1", *common)
    assert first.returncode == 0, first.stderr
    assert not (out / "results.json").exists() and (out / "checkpoint.pt").is_file()
    resumed = cli("run-baseline", "--resume", str(out), "--dataset", str(datasets["pitvqa"]), "-q")
    assert resumed.returncode == 0, resumed.stderr
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    # the same as an uninterrupted run: the resumed run continues exactly
    whole = cli("run-baseline", "vlm-tiny", "--out", str(tmp_path / "whole"), *common)
    assert whole.returncode == 0, whole.stderr
    digest = lambda folder: json.loads((folder / "run.json").read_text())["final_weights_sha256_per_rank"]  # noqa: E731
    assert digest(out) == digest(tmp_path / "whole")
    assert (out / "predictions" / "operation_note.jsonl").read_bytes() == (tmp_path / "whole" / "predictions" / "operation_note.jsonl").read_bytes()
    results = json.loads((out / "results.json").read_text())
    assert set(results["submission"]["meta"]["parameters"]["tasks"]) == {"instruments", "phase", "step", "next_phase", "next_step", "operation_note"}


@pytest.mark.parametrize("arguments, message", [
    (["mono-bilstm", "--set", "tasks=[\"landmarks\"]"], "'landmarks' is a multilabel task; architecture bilstm-seq2seq trains text tasks"),
    (["vlm-tiny", "--set", "tasks=[\"phase\"]"], "ent-fess has no task 'phase'"),
    (["vlm-tiny", "--set", "train.selection=landmarks.bleu_2"], "train.selection: 'landmarks.bleu_2' is not one of relative, release_delta_p or: landmarks.micro_f1"),
    (["vlm-tiny", "--set", "train.selection=release_delta_p"], "train.selection: release_delta_p scores the EndoARSS tasks (activity, segmentation)"),
    (["vlm-tiny", "--set", "data.augment=true"], "data.augment: the vision-language runners do not augment"),
    (["vlm-tiny", "--set", "data.load_size=[126,126]"], "data.load_size: the vision-language runners load frames at data.input_size without it: set it to null"),
    (["mono-bilstm", "--set", "task_types=[\"multilabel\"]"], "no task of the types multilabel that architecture bilstm-seq2seq trains"),
    (["endoarss-tiny"], "architecture hps trains activity and segmentation, which ent-fess lacks"),
])
def test_what_a_run_cannot_train_is_refused_before_its_folder_exists(datasets, tmp_path, arguments, message):
    out = tmp_path / "run"
    refused = cli("run-baseline", *arguments, "--dataset", str(datasets["ent-fess"]), "--out", str(out))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], refused.stderr
    assert not out.exists()


def test_refusing_inside_the_family_keeps_the_configuration_check_first():
    with pytest.raises(InputError, match="model.fusion.cross_attention"):
        load_config("vlm-no-image", ["model.fusion.cross_attention=true"])


@pytest.mark.slow
def test_two_processes_with_gloo_train_the_vlm_to_identical_weights(datasets, tmp_path):
    run_dir = tmp_path / "ddp"
    shrink = [setting for setting in SHRINK if not setting.startswith("train.precision")]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "mtlbench", "-q", "run-baseline", "vlm-small", "--dataset", str(datasets["pitvqa"]), "--out", str(run_dir),
        *[argument for setting in shrink for argument in ("--set", setting)], "--set", "train.device=cpu", "--set", "weighting.name=db_mtl",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((run_dir / "run.json").read_text())
    digests = run["final_weights_sha256_per_rank"]
    assert run["world_size"] == 2 and len(digests) == 2 and digests[0] == digests[1]


def test_pretrained_endovit_and_minilm_make_a_comparable_run_that_names_both_files(datasets, tmp_path):
    import torch
    from test_vl_weights import mae_state

    weights = tmp_path / "endovit.pth"
    torch.save({"model": mae_state(depth=1, dim=48), "args": __import__("argparse").Namespace(lr=1)}, weights)
    config = load_config("endovit-landmarks", [*SHRINK, "model.text.weights=\"all-MiniLM-L6-v2\"", f"model.encoder.weights={json.dumps(str(weights))}",
                                               "model.encoder.num_heads=1"])
    run_baseline(config, datasets["ent-fess"], tmp_path / "run")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["comparable"] is True and [entry["file"] for entry in record["pretrained_weights"]] == ["endovit.pth"]
    vlm = load_config("vlm-endovit", [*SHRINK, f"model.encoder.weights={json.dumps(str(weights))}", "model.encoder.num_heads=1"])
    run_baseline(vlm, datasets["ent-fess"], tmp_path / "vlm")
    record = json.loads((tmp_path / "vlm" / "run.json").read_text())
    assert record["comparable"] is True
    assert sorted(entry["file"] for entry in record["pretrained_weights"]) == ["endovit.pth", "model.safetensors"]


def gpt2_folder(folder: Path, texts: list[str]) -> Path:
    """A Hugging Face GPT-2 folder: a byte-level BPE tokenizer.json trained on `texts` with
    <|endoftext|>, and random weights in the official layout whose wte matches it."""
    import safetensors.torch
    from test_vl_weights import gpt2_state
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from baselines.vl.gpt2 import GPT2Shape

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    shape = GPT2Shape(vocab_size=tokenizer.get_vocab_size(), positions=1024, width=32, layers=1, heads=2)
    state = {key: value for key, value in gpt2_state(shape, buffers=False).items()}
    safetensors.torch.save_file(state, folder / "model.safetensors")
    return folder


def test_lv_gpt_with_gpt2_weights_generates_with_their_tokenizer(datasets, tmp_path):
    from mtlbench.dataset.manifest import read_dataset

    card = read_dataset(datasets["pitvqa"])
    texts = [sample.labels["operation_note"].text for sample in card.split("train")]
    folder = gpt2_folder(tmp_path / "gpt2", texts)
    config = load_config("lv-gpt", [*SHRINK, f"model.gpt2.weights={json.dumps(str(folder))}"])
    results = run_baseline(config, datasets["pitvqa"], tmp_path / "run")
    assert results["operation_note"]["pairs"] > 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["vocabulary_size"] == len(json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"])  # the folder's tokens
    # GPT-2 is pretrained, the image encoder is not
    assert record["comparable"] is False
    predictions = (tmp_path / "run" / "predictions" / "operation_note.jsonl").read_text(encoding="utf-8").splitlines()
    assert all(json.loads(line)["text"].strip() for line in predictions)
