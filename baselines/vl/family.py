"""The vision-language family: multilabel, classification and text tasks (architectures vlm,
bilstm-seq2seq, lv-gpt), on any dataset that has them (ENT-FESS, PitVQA, MTLEndovis with Sentence files).

Predictions are what the submission writers take: multilabel confidences (sigmoid), class
probabilities (softmax), generated texts. Validation scores them with the evaluator's metric
functions (multi-label micro/macro F1 at the writer's 0.5 threshold, accuracy and macro-F1,
corpus BLEU-2 and ROUGE-L), so selection sees what the evaluator will score; the embedding
cosine, which needs a second model, is left to the final evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from baselines.family import Family, Prediction, resolve_tasks
from baselines.vl.data import IGNORE_LABEL, Collate, context_text, split_view, vl_evaluation_loader, vl_training_loader
from baselines.vl.losses import multilabel_loss, positive_weights, token_loss
from baselines.vl.registry import VL_ARCHITECTURES
from baselines.vl.text_encoder import text_tokenizer
from baselines.vl.vocabulary import TokenizerVocabulary, WordVocabulary
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.errors import InputError
from mtlbench.evaluation.scorers.multilabel import DECISION_THRESHOLD
from mtlbench.metrics.activity import activity_metrics
from mtlbench.metrics.multilabel import multilabel_metrics
from mtlbench.metrics.text import text_metrics

SUPPORTED = {"vlm": ("multilabel", "classification", "text"), "bilstm-seq2seq": ("text",), "lv-gpt": ("multilabel", "classification", "text")}
GPT2_TOKENIZER = "tokenizer.json"


class VisionLanguageFamily(Family):
    def __init__(self, config, card: DatasetCard):
        super().__init__(config, card, resolve_tasks(config, card, SUPPORTED[config.model.architecture]))
        if config.data.augment:
            raise InputError("data.augment", "the vision-language runners do not augment (flips swap the anatomy the texts name): set it false")
        data = config.data
        for name, value, default in (("load_size", data.load_size, None), ("resize", data.resize, "antialias"), ("cache", data.cache, False), ("drop_last", data.drop_last, False)):
            if value != default:
                raise InputError(f"data.{name}", f"the vision-language runners load frames at data.input_size without it: set it to {json.dumps(default)}")
        self.task_list = tuple(card.task(name) for name in self.tasks)
        train = card.split("train")
        self.vocabulary = self._vocabulary(train)
        uses_tokenizer = config.model.architecture == "vlm" and config.model.fusion.text
        tokenizer = text_tokenizer(config.model.text.weights, config.model.text.max_tokens) if uses_tokenizer else None
        self.collate = Collate(self.task_list, self.vocabulary, tokenizer, config.model.decoder.max_length)
        self.pos_weights = {
            task.name: positive_weights(torch.from_numpy(task.indicator([sample.labels[task.name] for sample in train]).astype(np.float32)))
            for task in self.task_list if task.kind == "multilabel"
        }
        self.train_view = split_view(card, "train", config.data.input_size, config.data.normalise)

    def _vocabulary(self, train):
        gpt2 = self.config.model.gpt2
        if self.config.model.architecture == "lv-gpt" and gpt2.weights:
            folder = Path(gpt2.weights)
            return TokenizerVocabulary((folder if folder.is_dir() else folder.parent) / GPT2_TOKENIZER)
        texts = [sample.labels[task.name].text for sample in train for task in self.task_list if task.kind == "text"]
        # context words too: the BiLSTM and LV-GPT read the context with this vocabulary
        texts += [context_text(self._item(sample), self.task_list) for sample in train]
        return WordVocabulary.build(texts, self.config.model.decoder.vocabulary)

    def _item(self, sample) -> dict:
        item = {}
        for task in self.task_list:
            item.update(task.item(sample.labels[task.name]))
        return item

    def description(self) -> dict:
        """`removed`: the parts of the full model an ablation switched off (empty for the full model);
        `vocabulary`: the decoder's token table size."""
        fusion = self.config.model.fusion
        switches = (("image embedding", fusion.image), ("text embedding", fusion.text), ("cross-attention", fusion.cross_attention))
        removed = [name for name, on in switches if not on] if self.config.model.architecture == "vlm" else []
        return {"removed": removed, "vocabulary_size": len(self.vocabulary)}

    def selection_metrics(self) -> tuple[str, ...]:
        keys = {"multilabel": ("micro_f1", "macro_f1", "samples_f1"), "classification": ("accuracy", "macro_f1"), "text": ("bleu_2", "rouge_l")}
        return tuple(f"{task.name}.{key}" for task in self.task_list for key in keys[task.kind])

    def build_model(self) -> torch.nn.Module:
        factory = VL_ARCHITECTURES.get(self.config.model.architecture, "model.architecture")
        return factory(self.config, self.task_list, self.vocabulary, tuple(self.config.data.input_size))

    def train_loader(self, epoch: int, runtime):
        data = self.config.data
        return vl_training_loader(self.train_view, self.collate, data.batch_size, data.workers, self.config.train.seed, epoch, runtime.distributed)

    def losses(self, model, batch: dict, runtime) -> dict[str, torch.Tensor]:
        device = runtime.device
        batch = to_device(batch, device)
        with runtime.autocast():
            outputs = model(batch)
        settings, losses = self.config.loss, {}
        for task in self.task_list:
            if task.kind == "multilabel":
                losses[task.name] = multilabel_loss(settings.multilabel, outputs[task.name], batch[task.name], self.pos_weights[task.name].to(device),
                                                    settings.gamma_positive, settings.gamma_negative, settings.clip)
            elif task.kind == "classification":
                losses[task.name] = torch.nn.functional.cross_entropy(outputs[task.name].float(), batch[task.name])
            else:
                losses[task.name] = token_loss(outputs[task.name], batch[task.name]["labels"], IGNORE_LABEL, self.config.model.decoder.label_smoothing)
        return losses

    def predict(self, model, card: DatasetCard, split: str, runtime) -> Iterator[Prediction]:
        view = split_view(card, split, self.config.data.input_size, self.config.data.normalise)
        samples = {sample.sample_id: sample for sample in view.samples}
        loader = vl_evaluation_loader(view, self.collate, self.config.data.eval_batch_size, self.config.data.workers)
        was_training = model.training
        model.eval()
        try:
            for batch in loader:
                with runtime.autocast():
                    outputs = model.predict(to_device(batch, runtime.device))
                values = {}
                for task in self.task_list:
                    if task.kind == "multilabel":
                        values[task.name] = torch.sigmoid(outputs[task.name].double()).cpu().numpy()
                    elif task.kind == "classification":
                        values[task.name] = torch.softmax(outputs[task.name].double(), dim=-1).cpu().numpy()
                    else:
                        values[task.name] = outputs[task.name]
                for row, sample_id in enumerate(batch["sample_id"]):
                    yield Prediction(samples[sample_id], {name: value[row] for name, value in values.items()})
        finally:
            model.train(was_training)

    def validation_metrics(self, predictions: Iterator[Prediction], card: DatasetCard) -> dict[str, float | None]:
        collected: dict[str, list] = {task.name: [] for task in self.task_list}
        samples = []
        for prediction in predictions:
            samples.append(prediction.sample)
            for name, value in prediction.values.items():
                collected[name].append(value)
        values: dict[str, float | None] = {}
        for task in self.task_list:
            truth = [sample.labels[task.name] for sample in samples]
            if task.kind == "multilabel":
                decided = (np.array(collected[task.name]) >= DECISION_THRESHOLD).astype(np.int8)
                metrics = multilabel_metrics(task.indicator(truth), decided, task.labels)
                keys = ("micro_f1", "macro_f1", "samples_f1")
            elif task.kind == "classification":
                metrics = activity_metrics(np.array([label.id for label in truth]), np.array([p.argmax() for p in collected[task.name]]), [c for c in task.classes])
                keys = ("accuracy", "macro_f1")
            else:
                metrics = text_metrics(collected[task.name], [label.text for label in truth])
                keys = ("bleu_2", "rouge_l")
            values.update({f"{task.name}.{key}": metrics[key] for key in keys})
        return values


def to_device(batch: dict, device) -> dict:
    def move(value):
        if isinstance(value, torch.Tensor):
            return value.to(device)
        if isinstance(value, dict):
            return {key: move(item) for key, item in value.items()}
        return value

    return {key: move(value) for key, value in batch.items()}
