"""Text embeddings in plain torch: a BERT encoder with Hugging Face parameter names, and sentence
embeddings (mean pooling, L2 norm) read offline from a sentence-transformers folder.

Neither sentence-transformers nor transformers is a dependency: both would pull in a hub client
and a large import tree for one small encoder, and the evaluator must work without a network.
"""

from __future__ import annotations

from mtlbench.embeddings.bert import BertConfig, BertModel, load_bert
from mtlbench.embeddings.sentence import DEFAULT_MODEL, SentenceEmbedder, cosine_similarities, default_model_folder

__all__ = [
    "DEFAULT_MODEL",
    "BertConfig",
    "BertModel",
    "SentenceEmbedder",
    "cosine_similarities",
    "default_model_folder",
    "load_bert",
]
