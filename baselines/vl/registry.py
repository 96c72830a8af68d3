"""Vision-language architectures, each file registering itself by name.

Factory: (config: RunConfig, tasks: tuple[Task, ...], vocabulary: WordVocabulary, input_size) -> model,
a module with forward(batch) -> {task: logits}, generate(batch, task) -> texts and shared_parameters().
"""

from mtlbench.registry import Registry

VL_ARCHITECTURES = Registry("vision-language architecture", modules=("baselines.vl.vlm", "baselines.vl.bilstm", "baselines.vl.lv_gpt"))


def register_vl_architecture(name: str, summary: str):
    """Decorator registering a factory under `name` with its one-line `summary` (for `run-baseline --list`)."""

    def add(factory):
        factory.summary = summary
        return VL_ARCHITECTURES.register(name)(factory)

    return add
