"""Every loaded-weights path of the vision-language runners (EndoViT, BERT family, GPT-2): a random
state dict in the official key layout loads strictly and computes what the layout says; damaged
ones are refused with one line."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F

from baselines.config import EncoderConfig
from baselines.models.endovit import build_endovit_encoder
from baselines.vl.gpt2 import MASK_BUFFER, GPT2Shape, load_gpt2
from baselines.vl.text_encoder import load_text_encoder
from baselines.weights_formats import inspect
from mtlbench.embeddings.sentence import default_model_folder
from mtlbench.errors import InputError


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def mae_state(depth=2, dim=64, grid=14, decoder=True) -> dict:
    """An MAE checkpoint's "model" entry in the official layout (timm key names, LayerNorm eps 1e-6)."""
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape):
        return torch.randn(*shape, generator=generator) * 0.02

    state = {"cls_token": tensor(1, 1, dim), "pos_embed": tensor(1, 1 + grid * grid, dim),
             "patch_embed.proj.weight": tensor(dim, 3, 16, 16), "patch_embed.proj.bias": tensor(dim)}
    for block in range(depth):
        p = f"blocks.{block}."
        state.update({p + "norm1.weight": 1 + tensor(dim), p + "norm1.bias": tensor(dim),
                      p + "attn.qkv.weight": tensor(3 * dim, dim), p + "attn.qkv.bias": tensor(3 * dim),
                      p + "attn.proj.weight": tensor(dim, dim), p + "attn.proj.bias": tensor(dim),
                      p + "norm2.weight": 1 + tensor(dim), p + "norm2.bias": tensor(dim),
                      p + "mlp.fc1.weight": tensor(4 * dim, dim), p + "mlp.fc1.bias": tensor(4 * dim),
                      p + "mlp.fc2.weight": tensor(dim, 4 * dim), p + "mlp.fc2.bias": tensor(dim)})
    state.update({"norm.weight": 1 + tensor(dim), "norm.bias": tensor(dim)})
    if decoder:
        state.update({"mask_token": tensor(1, 1, 32), "decoder_embed.weight": tensor(32, dim), "decoder_pred.bias": tensor(768)})
    return state


def reference_vit(state: dict, images: torch.Tensor, heads: int) -> torch.Tensor:
    """The MAE encoder forward written from the layout, with torch.nn.functional only."""
    dim = state["cls_token"].shape[-1]
    x = F.conv2d(images, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=16).flatten(2).transpose(1, 2)
    x = torch.cat([state["cls_token"].expand(len(x), -1, -1), x], dim=1) + state["pos_embed"]
    depth = len({key.split(".")[1] for key in state if key.startswith("blocks.")})
    for block in range(depth):
        p = f"blocks.{block}."
        h = F.layer_norm(x, (dim,), state[p + "norm1.weight"], state[p + "norm1.bias"], eps=1e-6)
        q, k, v = F.linear(h, state[p + "attn.qkv.weight"], state[p + "attn.qkv.bias"]).chunk(3, dim=-1)
        split = lambda t: t.view(len(t), -1, heads, dim // heads).transpose(1, 2)  # noqa: E731
        weights = (split(q) @ split(k).transpose(-1, -2) / (dim // heads) ** 0.5).softmax(-1)
        attended = (weights @ split(v)).transpose(1, 2).reshape(len(x), -1, dim)
        x = x + F.linear(attended, state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
        h = F.layer_norm(x, (dim,), state[p + "norm2.weight"], state[p + "norm2.bias"], eps=1e-6)
        x = x + F.linear(F.gelu(F.linear(h, state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"])), state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
    return F.layer_norm(x, (dim,), state["norm.weight"], state["norm.bias"], eps=1e-6)[:, 1:]


def endovit_config(path, **changes):
    return EncoderConfig(name="endovit", weights=str(path), depth=2, embed_dim=64, num_heads=2, **changes)


def test_endovit_checkpoint_loads_strictly_and_computes_the_mae_encoder(tmp_path, monkeypatch):
    state = mae_state()
    path = tmp_path / "endovit.pth"
    torch.save({"model": state, "args": argparse.Namespace(lr=1.5e-4), "epoch": 399, "exploit": Exploit()}, path)
    monkeypatch.chdir(tmp_path)
    encoder = build_endovit_encoder(endovit_config(path), (), (224, 224))
    assert not (tmp_path / "PWNED").exists()
    assert encoder.weights_loaded
    assert set(encoder.loading_report["ignored"]) == {"mask_token", "decoder_embed.weight", "decoder_pred.bias"}
    assert "argparse.Namespace" in encoder.loading_report["refused"] and "posix.system" in encoder.loading_report["refused"]
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = encoder(images)
    expected = reference_vit(state, images, heads=2).transpose(1, 2).reshape(2, 64, 14, 14)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    report = inspect(path)
    assert report["format"] == "endovit" and report["loads_exactly"] and report["refused"]


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("blocks.1.mlp.fc2.bias"), "missing: blocks.1.mlp.fc2.bias"),
    (lambda s: s.__setitem__("blocks.0.attn.qkv.weight", torch.zeros(3 * 64, 32)), "wrong shape: blocks.0.attn.qkv.weight"),
    (lambda s: s.__setitem__("blocks.0.ls1.gamma", torch.ones(64)), "unexpected: blocks.0.ls1.gamma"),
    (lambda s: s.__setitem__("norm.weight", torch.ones(64, dtype=torch.int64)), "not floating point: norm.weight"),
])
def test_damaged_endovit_checkpoints_are_refused(tmp_path, damage, message):
    state = mae_state()
    damage(state)
    path = tmp_path / "endovit.pth"
    torch.save({"model": state}, path)
    with pytest.raises(InputError, match=message):
        build_endovit_encoder(endovit_config(path), (), (224, 224))


def test_truncated_endovit_file_is_one_line(tmp_path):
    path = tmp_path / "endovit.pth"
    torch.save({"model": mae_state()}, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InputError, match="truncated or corrupt") as error:
        build_endovit_encoder(endovit_config(path), (), (224, 224))
    assert "\n" not in str(error.value)


def bert_folder(tmp_path, tensors: dict, config: dict):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    safetensors.torch.save_file({key: value.contiguous() for key, value in tensors.items()}, folder / "model.safetensors")
    (folder / "tokenizer.json").write_bytes((default_model_folder() / "tokenizer.json").read_bytes())
    return folder


def bert_state(config: dict, prefix="bert.", heads=True) -> dict:
    """A BERT state dict in the Hugging Face layout (BertForMaskedLM style, with pooler and cls head)."""
    generator = torch.Generator().manual_seed(2)
    h, i = config["hidden_size"], config["intermediate_size"]

    def t(*shape):
        return torch.randn(*shape, generator=generator) * 0.05

    state = {"embeddings.word_embeddings.weight": t(config["vocab_size"], h), "embeddings.position_embeddings.weight": t(config["max_position_embeddings"], h),
             "embeddings.token_type_embeddings.weight": t(2, h), "embeddings.LayerNorm.weight": 1 + t(h), "embeddings.LayerNorm.bias": t(h)}
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        for name in ("query", "key", "value"):
            state[p + f"attention.self.{name}.weight"], state[p + f"attention.self.{name}.bias"] = t(h, h), t(h)
        state.update({p + "attention.output.dense.weight": t(h, h), p + "attention.output.dense.bias": t(h),
                      p + "attention.output.LayerNorm.weight": 1 + t(h), p + "attention.output.LayerNorm.bias": t(h),
                      p + "intermediate.dense.weight": t(i, h), p + "intermediate.dense.bias": t(i),
                      p + "output.dense.weight": t(h, i), p + "output.dense.bias": t(h),
                      p + "output.LayerNorm.weight": 1 + t(h), p + "output.LayerNorm.bias": t(h)})
    state = {prefix + key: value for key, value in state.items()}
    if heads:
        state.update({prefix + "pooler.dense.weight": t(h, h), prefix + "pooler.dense.bias": t(h), "cls.predictions.bias": t(config["vocab_size"])})
    return state


BERT_CONFIG = {"model_type": "bert", "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
               "intermediate_size": 64, "max_position_embeddings": 64}


def test_a_biobert_style_folder_loads_with_new_cross_attention_only(tmp_path):
    folder = bert_folder(tmp_path, bert_state(BERT_CONFIG), BERT_CONFIG)
    loaded = load_text_encoder(str(folder), cross_attention=True)
    assert set(loaded.ignored) == {"pooler.dense.weight", "pooler.dense.bias", "cls.predictions.bias"}
    assert torch.equal(loaded.encoder.encoder.layer[1].output.dense.bias, bert_state(BERT_CONFIG)["bert.encoder.layer.1.output.dense.bias"])
    assert loaded.encoder.encoder.layer[0].crossattention.self.key.weight.shape == (32, 32)
    report = inspect(folder)
    assert report["format"] == "bert" and report["loads_exactly"]


def test_the_text_encoder_without_cross_attention_equals_the_plain_bert(tmp_path):
    from mtlbench.embeddings.bert import load_bert

    folder = bert_folder(tmp_path, bert_state(BERT_CONFIG, heads=False), BERT_CONFIG)
    plain, _, _ = load_bert(folder)
    fused = load_text_encoder(str(folder), cross_attention=False).encoder.eval()
    ids = torch.tensor([[101, 2023, 2003, 102, 0], [101, 7592, 102, 0, 0]])
    mask = (ids != 0).long()
    torch.testing.assert_close(fused(ids, mask), plain(ids, mask), atol=0, rtol=0)


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("bert.encoder.layer.1.attention.self.key.bias"), "missing: encoder.layer.1.attention.self.key.bias"),
    (lambda s: s.__setitem__("bert.encoder.layer.0.intermediate.dense.weight", torch.zeros(65, 32)), "wrong shape"),
    (lambda s: s.__setitem__("bert.encoder.layer.0.crossattention.self.query.weight", torch.zeros(32, 32)), None),
    (lambda s: s.__setitem__("bert.encoder.layer.5.output.dense.bias", torch.zeros(32)), "unexpected: encoder.layer.5"),
])
def test_damaged_bert_folders_are_refused(tmp_path, damage, message):
    state = bert_state(BERT_CONFIG)
    damage(state)
    folder = bert_folder(tmp_path, state, BERT_CONFIG)
    if message is None:  # a file that carries cross-attention weights of the right shape loads them
        loaded = load_text_encoder(str(folder), cross_attention=True)
        assert torch.equal(loaded.encoder.encoder.layer[0].crossattention.self.query.weight, torch.zeros(32, 32))
        return
    with pytest.raises(InputError, match=message):
        load_text_encoder(str(folder), cross_attention=True)


def test_the_default_text_encoder_is_the_real_minilm():
    loaded = load_text_encoder("all-MiniLM-L6-v2", cross_attention=True)
    encoder = loaded.encoder
    assert encoder.hidden_size == 384 and len(encoder.encoder.layer) == 6 and encoder.weights_loaded
    base = sum(p.numel() for name, p in encoder.named_parameters() if ".crossattention." not in name)
    # embeddings 30522*384 + 512*384 + 2*384 + 2*384 = 11,918,592; per layer 4*(384*384 + 384) + 768
    # + (384*1536 + 1536) + (1536*384 + 384) + 768 = 1,774,464, six of them: the model's 22,713,216
    # (the published 22.7M) less the unused pooler, 384*384 + 384
    assert base == 11_918_592 + 6 * 1_774_464 == 22_713_216 - 147_840


def gpt2_state(shape: GPT2Shape, prefix="", buffers=True) -> dict:
    """A Hugging Face GPT-2 state dict: Conv1D weights stored (in, out)."""
    generator = torch.Generator().manual_seed(3)
    w = shape.width

    def t(*size):
        return torch.randn(*size, generator=generator) * 0.02

    state = {"wte.weight": t(shape.vocab_size, w), "wpe.weight": t(shape.positions, w), "ln_f.weight": 1 + t(w), "ln_f.bias": t(w)}
    for layer in range(shape.layers):
        p = f"h.{layer}."
        state.update({p + "ln_1.weight": 1 + t(w), p + "ln_1.bias": t(w), p + "attn.c_attn.weight": t(w, 3 * w), p + "attn.c_attn.bias": t(3 * w),
                      p + "attn.c_proj.weight": t(w, w), p + "attn.c_proj.bias": t(w), p + "ln_2.weight": 1 + t(w), p + "ln_2.bias": t(w),
                      p + "mlp.c_fc.weight": t(w, 4 * w), p + "mlp.c_fc.bias": t(4 * w), p + "mlp.c_proj.weight": t(4 * w, w), p + "mlp.c_proj.bias": t(w)})
        if buffers:
            state[p + "attn.bias"] = torch.tril(torch.ones(1, 1, shape.positions, shape.positions))
            state[p + "attn.masked_bias"] = torch.tensor(-1e4)
    return {prefix + key: value for key, value in state.items()}


def reference_gpt2(state: dict, ids: torch.Tensor, heads: int) -> torch.Tensor:
    """GPT-2's forward from the Conv1D layout: x @ W + b with W (in, out), causal attention, gelu_new."""
    w = state["wte.weight"].shape[1]
    layers = len({key.split(".")[1] for key in state if key.startswith("h.")})
    x = state["wte.weight"][ids] + state["wpe.weight"][torch.arange(ids.shape[1])]
    length = ids.shape[1]
    causal = torch.full((length, length), float("-inf")).triu(1)
    for layer in range(layers):
        p = f"h.{layer}."
        h = F.layer_norm(x, (w,), state[p + "ln_1.weight"], state[p + "ln_1.bias"], eps=1e-5)
        q, k, v = (h @ state[p + "attn.c_attn.weight"] + state[p + "attn.c_attn.bias"]).split(w, dim=-1)
        split = lambda t: t.view(len(t), -1, heads, w // heads).transpose(1, 2)  # noqa: E731
        weights = (split(q) @ split(k).transpose(-1, -2) / (w // heads) ** 0.5 + causal).softmax(-1)
        x = x + (weights @ split(v)).transpose(1, 2).reshape(len(x), -1, w) @ state[p + "attn.c_proj.weight"] + state[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (w,), state[p + "ln_2.weight"], state[p + "ln_2.bias"], eps=1e-5)
        hidden = h @ state[p + "mlp.c_fc.weight"] + state[p + "mlp.c_fc.bias"]
        hidden = 0.5 * hidden * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (hidden + 0.044715 * hidden**3)))
        x = x + hidden @ state[p + "mlp.c_proj.weight"] + state[p + "mlp.c_proj.bias"]
    return F.layer_norm(x, (w,), state["ln_f.weight"], state["ln_f.bias"], eps=1e-5)


SMALL_GPT2 = GPT2Shape(vocab_size=100, positions=32, width=48, layers=2, heads=4)


@pytest.mark.parametrize("suffix, prefix", [(".bin", ""), (".safetensors", "transformer.")])
def test_gpt2_files_load_with_conv1d_transposed(tmp_path, suffix, prefix):
    state = gpt2_state(SMALL_GPT2, prefix)
    if prefix:  # GPT2LMHeadModel: lm_head tied to wte
        state["lm_head.weight"] = state["transformer.wte.weight"].clone()
    path = tmp_path / f"model{suffix}"
    if suffix == ".bin":
        torch.save(state, path)
    else:
        # safetensors files hold no mask buffers
        safetensors.torch.save_file({k: v.contiguous() for k, v in state.items() if not MASK_BUFFER.fullmatch(k.removeprefix("transformer."))}, path)
    model = load_gpt2(path, heads=4)
    assert model.shape == SMALL_GPT2
    ids = torch.tensor([[5, 17, 42, 99, 0, 3]])
    with torch.no_grad():
        ours = model(model.wte(ids), torch.arange(6)[None])
    plain = {key.removeprefix("transformer."): value for key, value in state.items()}
    torch.testing.assert_close(ours, reference_gpt2(plain, ids, heads=4), atol=1e-5, rtol=1e-5)
    assert inspect(path)["format"] == "gpt2" and inspect(path)["loads_exactly"]


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("h.1.mlp.c_fc.bias"), "missing: h.1.mlp.c_fc.bias"),
    (lambda s: s.__setitem__("h.0.attn.c_attn.weight", torch.zeros(3 * 48, 48)), "wrong shape: h.0.attn.c_attn.weight"),
    (lambda s: s.__setitem__("lm_head.weight", torch.zeros(100, 48)), "not tied"),
    (lambda s: s.__setitem__("h.0.attn.c_proj.weight", torch.zeros(48)), "not a 2-d Conv1D weight"),
])
def test_damaged_gpt2_files_are_refused(tmp_path, damage, message):
    state = gpt2_state(SMALL_GPT2)
    damage(state)
    path = tmp_path / "model.bin"
    torch.save(state, path)
    with pytest.raises(InputError, match=message):
        load_gpt2(path, heads=4)


def test_a_gpt2_file_holding_code_is_refused_without_running_it(tmp_path, monkeypatch):
    path = tmp_path / "model.bin"
    torch.save({**gpt2_state(SMALL_GPT2), "exploit": Exploit()}, path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="safe .weights-only. loader"):
        load_gpt2(path, heads=4)
    assert not (tmp_path / "PWNED").exists()


def test_weights_inspect_cli_names_the_format(tmp_path):
    path = tmp_path / "endovit.pth"
    torch.save({"model": mae_state(), "args": argparse.Namespace(lr=1)}, path)
    shown = subprocess.run([sys.executable, "-m", "mtlbench", "weights", "inspect", str(path)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "endovit" in shown.stdout and "refused" in shown.stdout and "argparse.Namespace" in shown.stdout and "loads exactly" in shown.stdout
    state = mae_state()
    state.pop("norm.bias")
    torch.save({"model": state}, path)
    shown = subprocess.run([sys.executable, "-m", "mtlbench", "weights", "inspect", str(path)], capture_output=True, text=True)
    assert shown.returncode == 1 and "missing" in shown.stdout and "Traceback" not in shown.stderr


def legacy_exploit(path):
    """A file in torch's legacy (non-zip) format whose first pickle runs code: torch reads that
    header with pickle_module.load, not with the restricted Unpickler."""
    import pickle

    with open(path, "wb") as file:
        pickle.dump(Exploit(), file)
    return path


def torchscript_archive(path):
    """A TorchScript archive: torch.load hands it to torch.jit.load, which runs its code."""
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    return path


@pytest.mark.parametrize("make, message", [
    (legacy_exploit, "not a file the safe .weights-only. loader accepts"),
    (torchscript_archive, "a TorchScript archive, not a checkpoint"),
])
def test_files_that_would_run_code_are_refused_by_endovit_and_weights_inspect(tmp_path, monkeypatch, make, message):
    monkeypatch.chdir(tmp_path)
    path = make(tmp_path / "endovit.pth")
    with pytest.raises(InputError, match=message):
        build_endovit_encoder(endovit_config(path), (), (224, 224))
    shown = subprocess.run([sys.executable, "-m", "mtlbench", "weights", "inspect", str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 1 and "Traceback" not in shown.stderr and len(shown.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "PWNED").exists()


def test_a_legacy_format_file_of_tensors_only_still_loads(tmp_path):
    path = tmp_path / "endovit.pth"
    torch.save({"model": mae_state(decoder=False)}, path, _use_new_zipfile_serialization=False)
    assert build_endovit_encoder(endovit_config(path), (), (224, 224)).weights_loaded


def test_a_tokenizer_larger_than_the_bert_vocabulary_is_refused(tmp_path):
    from baselines.vl.text_encoder import text_tokenizer

    small = {**BERT_CONFIG, "vocab_size": 1000}
    folder = bert_folder(tmp_path, bert_state(small, heads=False), small)
    with pytest.raises(InputError, match="30522 tokens, more than the model's vocab_size 1000"):
        text_tokenizer(str(folder), 32)
    (folder / "tokenizer.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable tokenizers file"):
        text_tokenizer(str(folder), 32)
