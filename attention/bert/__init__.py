"""A pretrained BERT encoder (all-MiniLM-L6-v2 by default) running on the project's attention.

Imports torch and the standard library only; ``safetensors`` and ``tokenizers`` are imported
when a model is loaded. ``transformers`` is never used::

    model, tokenizer, info = load_bert(bundled_model_path())
    batch = tokenizer.encode(["The man who passes the sentence should swing the sword."])
    out = model(batch.input_ids, key_padding_mask=batch.key_padding_mask)
    attn = out.sequence_attentions(0, batch.lengths[0])  # (N, H, n, n), no padding
"""

from attention.bert.analysis import (
    aggregate_words,
    attention_rollout,
    attention_share,
    head_entropy,
    offset_argmax_share,
    rollout_by_layer,
    row_entropy,
    special_token_shares,
)
from attention.bert.config import (
    BertConfig,
    check_model_size,
    num_parameters,
    parameter_bytes,
)
from attention.bert.joint import (
    EncoderCall,
    JoinRule,
    join_rule,
    joint_forward,
    may_join,
)
from attention.bert.loading import (
    BUNDLED_MODEL_NAME,
    BertInfo,
    bundled_model_path,
    load_bert,
)
from attention.bert.model import (
    BertEmbeddings,
    BertLayer,
    BertModel,
    BertOutput,
    LayerHook,
    LayerOutput,
)
from attention.bert.pooling import Pooling, embed_texts, mean_pool, pool, sentence_embeddings
from attention.bert.tokenizer import TokenizedBatch, WordPieceTokenizer, word_groups
from attention.bert.weights import load_hf_state_dict
from attention.folders.errors import (
    ModelDependencyError,
    ModelError,
    ModelFileError,
    ModelSizeError,
)
from attention.folders.files import DEFAULT_MAX_MODEL_BYTES

__all__ = [
    "BUNDLED_MODEL_NAME",
    "DEFAULT_MAX_MODEL_BYTES",
    "BertConfig",
    "BertEmbeddings",
    "BertInfo",
    "BertLayer",
    "BertModel",
    "BertOutput",
    "EncoderCall",
    "JoinRule",
    "LayerHook",
    "LayerOutput",
    "ModelDependencyError",
    "ModelError",
    "ModelFileError",
    "ModelSizeError",
    "Pooling",
    "TokenizedBatch",
    "WordPieceTokenizer",
    "aggregate_words",
    "attention_rollout",
    "attention_share",
    "bundled_model_path",
    "check_model_size",
    "embed_texts",
    "head_entropy",
    "join_rule",
    "joint_forward",
    "load_bert",
    "load_hf_state_dict",
    "may_join",
    "mean_pool",
    "num_parameters",
    "offset_argmax_share",
    "parameter_bytes",
    "pool",
    "rollout_by_layer",
    "row_entropy",
    "sentence_embeddings",
    "special_token_shares",
    "word_groups",
]
