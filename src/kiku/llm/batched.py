"""Several sequences decoded together on one llama.cpp context (continuous batching, in process).

:class:`BatchEngine` owns one llama.cpp model and one context with ``n_parallel`` sequence slots.
A worker thread takes requests from a queue; every step it sends the next token of each
sequence being decoded *and* a chunk of any waiting prompt through one ``llama_decode`` call,
so the weights are read once for all sequences, and a finished sequence's slot is refilled at
once (continuous batching). Decoding is greedy at temperature 0 (kiku's default); a request
with a temperature above 0 (kiku's retry after an unusable answer) samples from the
:data:`SAMPLE_TOP_K` best tokens with its own seeded generator, so runs stay repeatable.

JSON is constrained only where a schema is given, and cheaply: the unconstrained best token is
checked against the grammar first (one candidate), and only when the grammar rejects it is the
grammar applied to the whole vocabulary (llama.cpp's own ``common_sampler`` does the same).

Example:
    >>> engine = BatchEngine("model.gguf", n_parallel=4, n_threads=2)                # doctest: +SKIP
    >>> engine.generate([{"role": "user", "content": "Name a colour in JSON"}], {"type": "object"}, 32).text  # doctest: +SKIP
    '{"colour": "blue"}'
"""

from __future__ import annotations

import ctypes
import json
import math
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The system message kiku sends to local models (replaces a template's longer default one).
SYSTEM = "You answer in JSON."
#: Tokens a tempered request samples among (the best ones after the grammar, if any).
SAMPLE_TOP_K = 40


@dataclass
class Generation:
    """One finished sequence: its text and token counts, and seconds from start to finish."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float = 0.0


@dataclass
class _Request:
    tokens: list[int]
    grammar: str | None
    max_tokens: int
    future: Future[Generation]
    temperature: float = 0.0
    seed: int = 0
    started: float = field(default_factory=time.perf_counter)


@dataclass
class _Slot:
    seq_id: int
    request: _Request
    pending: list[int]  # prompt tokens not yet decoded
    pos: int = 0
    sampler: Any = None  # the grammar sampler, or None
    pieces: list[bytes] = field(default_factory=list)
    last: int | None = None  # the last sampled token, to be decoded next
    logit_row: int = -1  # row of this slot's logits in the last batch (-1: none)
    rng: np.random.Generator | None = None  # the request's own generator when it samples


class BatchEngine:
    """An in-process llama.cpp model decoding up to ``n_parallel`` sequences at once.

    ``n_ctx_per_seq``: context (prompt + answer) of each sequence; ``n_batch``: most tokens per
    decode call. Thread-safe: :meth:`submit` from any thread; :meth:`generate` blocks.
    """

    def __init__(self, path: str | Path, n_parallel: int = 4, n_threads: int = 2, n_ctx_per_seq: int = 2048,
                 n_batch: int = 512, seed: int = 0, kv_unified: bool = True) -> None:
        import llama_cpp
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose

        set_verbose(False)  # llama.cpp's load and graph logs go to stderr otherwise
        self.path = Path(path)
        self.n_parallel = max(1, n_parallel)
        self.n_ctx_per_seq = n_ctx_per_seq
        self.n_batch = n_batch
        self.seed = seed
        self._lib = llama_cpp
        model_params = llama_cpp.llama_model_default_params()
        self.model = _internals.LlamaModel(path_model=str(self.path), params=model_params, verbose=False)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_per_seq * self.n_parallel
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = self.n_parallel
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.kv_unified = kv_unified
        params.no_perf = True
        self.context = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.vocab = self.model.vocab
        self.n_vocab = self.model.n_vocab()
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._full = _internals.LlamaTokenDataArray(n_vocab=self.n_vocab)
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._grammars: dict[str, str] = {}
        self._formatter = self._chat_formatter()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self.steps = 0  # decode calls made (for the benchmark)
        self.stats = {"prompt_tokens": 0, "prompt_seconds": 0.0, "decode_tokens": 0, "decode_seconds": 0.0}

    # -- prompts ------------------------------------------------------------------------------
    def _chat_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.model.metadata().get("tokenizer.chat_template")
        if not template:
            return None
        eos = self.model.token_get_text(self.model.token_eos())
        bos = self.model.token_get_text(self.model.token_bos()) if self.model.token_bos() >= 0 else ""
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt text of ``messages`` in the model's chat template, with kiku's short system message."""
        if not any(m["role"] == "system" for m in messages):
            messages = [{"role": "system", "content": SYSTEM}, *messages]
        if self._formatter is None:
            return "\n\n".join(m["content"] for m in messages) + "\n\n"
        return str(self._formatter(messages=messages).prompt)

    def tokenize(self, text: str, special: bool = True, add_bos: bool | None = None) -> list[int]:
        """Token ids of ``text`` (chat-template markers are read as special tokens)."""
        bos = self.model.add_bos_token() if add_bos is None else add_bos
        return list(self.model.tokenize(text.encode("utf-8"), add_bos=bos, special=special))

    def grammar_for(self, schema: dict[str, Any] | None) -> str | None:
        """The GBNF grammar of a JSON schema (cached per schema), or None for free text."""
        if not schema:
            return None
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            from llama_cpp.llama_grammar import json_schema_to_gbnf

            self._grammars[key] = json_schema_to_gbnf(json.dumps(schema))  # property order kept: it is the answer's order
        return self._grammars[key]

    # -- requests -----------------------------------------------------------------------------
    def submit(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int,
               temperature: float = 0.0, seed: int = 0) -> Future[Generation]:
        """Queue one chat completion; the future resolves to a :class:`Generation`.

        ``temperature`` 0 decodes greedily; above 0 the request samples, seeded by ``seed``.
        """
        tokens = self.tokenize(self.render(messages))
        budget = self.n_ctx_per_seq - max_tokens - 4
        if len(tokens) > budget:  # keep the start and the end (the instructions come last)
            head = budget // 3
            tokens = tokens[:head] + tokens[-(budget - head):]
        future: Future[Generation] = Future()
        self._queue.put(_Request(tokens, self.grammar_for(schema), max_tokens, future, float(temperature), int(seed)))
        self._ensure_worker()
        return future

    def generate(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Generation:
        """One chat completion, blocking."""
        return self.submit(messages, schema, max_tokens).result()

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="kiku-llama-batch", daemon=True)
                self._worker.start()

    # -- the decode loop ----------------------------------------------------------------------
    def _run(self) -> None:
        slots: list[_Slot] = []
        free = list(range(self.n_parallel))
        while True:
            while free:
                try:
                    request = self._queue.get(block=not slots, timeout=None if not slots else 0)
                except queue.Empty:
                    break
                if request is None:
                    return
                seq = free.pop(0)
                rng = np.random.default_rng(request.seed) if request.temperature > 0 else None
                slots.append(_Slot(seq, request, list(request.tokens), sampler=self._new_sampler(request.grammar), rng=rng))
            if not slots:
                continue
            try:
                self._step(slots)
            except Exception as exc:  # noqa: BLE001 - fail the requests, keep the engine alive
                for slot in slots:
                    self._release(slot)
                    if not slot.request.future.done():
                        slot.request.future.set_exception(exc)
                free = list(range(self.n_parallel))
                slots = []
                continue
            for slot in [s for s in slots if s.request.future.done()]:
                slots.remove(slot)
                free.append(slot.seq_id)

    def _new_sampler(self, grammar: str | None) -> Any:
        if grammar is None:
            return None
        sampler = self._lib.llama_sampler_init_grammar(self.vocab, grammar.encode("utf-8"), b"root")
        if not sampler:
            raise ValueError("llama.cpp could not parse the JSON grammar")
        return sampler

    def _release(self, slot: _Slot) -> None:
        self._lib.llama_memory_seq_rm(self.context.memory, slot.seq_id, -1, -1)
        if slot.sampler is not None:
            self._lib.llama_sampler_free(slot.sampler)
            slot.sampler = None

    def _step(self, slots: list[_Slot]) -> None:
        """One ``llama_decode``: the next token of every decoding sequence plus waiting prompt chunks."""
        batch = self._batch
        n = 0

        def add(token: int, slot: _Slot, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = slot.pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = slot.seq_id
            batch.logits[n] = logits
            if logits:
                slot.logit_row = n
            slot.pos += 1
            n += 1

        for slot in slots:
            slot.logit_row = -1
            if not slot.pending and slot.last is not None:
                add(slot.last, slot, True)
        for slot in slots:
            room = self.n_batch - n
            if slot.pending and room > 0:
                chunk, slot.pending = slot.pending[:room], slot.pending[room:]
                for i, token in enumerate(chunk):
                    add(token, slot, not slot.pending and i == len(chunk) - 1)
        batch.n_tokens = n
        decoding = sum(1 for slot in slots if slot.logit_row >= 0 and not slot.pending and slot.last is not None)
        started = time.perf_counter()
        code = self._lib.llama_decode(self.context.ctx, batch)
        seconds = time.perf_counter() - started
        self.steps += 1
        if decoding == n:  # a step of answer tokens only: the decode speed
            self.stats["decode_tokens"] += n
            self.stats["decode_seconds"] += seconds
        elif decoding == 0:  # prompt tokens only: the prompt speed
            self.stats["prompt_tokens"] += n
            self.stats["prompt_seconds"] += seconds
        if code != 0:
            raise RuntimeError(f"llama_decode failed with code {code}")
        for slot in slots:
            if slot.logit_row < 0:
                continue
            token = self._sample(slot)
            done = self._lib.llama_vocab_is_eog(self.vocab, token)
            if not done:
                slot.pieces.append(self._piece(token))
                slot.last = token
            if done or len(slot.pieces) >= slot.request.max_tokens:
                self._finish(slot)

    def _piece(self, token: int) -> bytes:
        length = self._lib.llama_token_to_piece(self.vocab, token, self._piece_buffer, len(self._piece_buffer), 0, False)
        return self._piece_buffer.raw[: max(0, length)]

    def _sample(self, slot: _Slot) -> int:
        pointer = self._lib.llama_get_logits_ith(self.context.ctx, slot.logit_row)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        if slot.rng is not None:
            return self._sample_tempered(slot, logits)
        token = int(np.argmax(logits))
        if slot.sampler is None:
            return token
        # the best token is checked against the grammar first; the whole vocabulary only if it is refused
        candidate: Any = self._one[0]
        candidate.id, candidate.logit, candidate.p = token, float(logits[token]), 0.0
        array: Any = self._one_array
        array.size, array.selected, array.sorted = 1, -1, False
        self._lib.llama_sampler_apply(slot.sampler, ctypes.byref(self._one_array))
        if not math.isinf(self._one[0].logit):
            self._lib.llama_sampler_accept(slot.sampler, token)
            return token
        self._full.copy_logits(logits)
        self._lib.llama_sampler_apply(slot.sampler, ctypes.byref(self._full.candidates))
        token = int(self._full.candidates_data.id[int(np.argmax(self._full.candidates_data.logit))])
        self._lib.llama_sampler_accept(slot.sampler, token)
        return token

    def _sample_tempered(self, slot: _Slot, logits: np.ndarray) -> int:
        """Sample among the best :data:`SAMPLE_TOP_K` tokens the grammar allows, at the request's temperature."""
        assert slot.rng is not None
        if slot.sampler is None:
            ids = np.arange(self.n_vocab)
            scores = np.asarray(logits, dtype=np.float64)
        else:
            self._full.copy_logits(logits)
            self._lib.llama_sampler_apply(slot.sampler, ctypes.byref(self._full.candidates))
            ids = np.asarray(self._full.candidates_data.id)
            scores = np.asarray(self._full.candidates_data.logit, dtype=np.float64)
        token = int(ids[tempered_choice(scores, slot.request.temperature, slot.rng, SAMPLE_TOP_K)])
        if slot.sampler is not None:
            self._lib.llama_sampler_accept(slot.sampler, token)
        return token

    def _finish(self, slot: _Slot) -> None:
        request = slot.request
        text = b"".join(slot.pieces).decode("utf-8", errors="replace")
        self._release(slot)
        request.future.set_result(Generation(text, len(request.tokens), len(slot.pieces),
                                             time.perf_counter() - request.started))

    def close(self) -> None:
        """Stop the worker and free the context (the model is freed with the object)."""
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout=30)
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None


def measure_throughput(engine: BatchEngine, prompts: list[list[dict[str, str]]], max_tokens: int,
                       schema: dict[str, Any] | None = None) -> dict[str, float]:
    """Seconds, prompt and completion tokens and tokens/s for ``prompts`` submitted at once.

    With ``engine.n_parallel`` = 1 this is the one-sequence speed; with more, the batch speed.
    """
    start = time.perf_counter()
    futures = [engine.submit(p, schema, max_tokens) for p in prompts]
    results = [f.result() for f in futures]
    seconds = time.perf_counter() - start
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(r.completion_tokens for r in results)
    return {"seconds": seconds, "prompt_tokens": prompt, "completion_tokens": completion,
            "completion_tokens_per_s": completion / seconds if seconds else 0.0, "requests": len(results)}


def tempered_choice(scores: np.ndarray, temperature: float, rng: np.random.Generator, top_k: int = SAMPLE_TOP_K) -> int:
    """Index drawn from the ``top_k`` finite ``scores`` with probabilities softmax(score / temperature).

    Scores of ``-inf`` (tokens a grammar forbids) are never drawn. Shapes: ``scores`` (n,).

    >>> rng = np.random.default_rng(0)
    >>> tempered_choice(np.array([0.0, -np.inf, 50.0]), 0.7, rng)
    2
    """
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) == 0:
        return int(np.argmax(scores))
    if len(finite) > top_k:
        finite = finite[np.argpartition(scores[finite], -top_k)[-top_k:]]
    z = scores[finite] / max(temperature, 1e-6)
    p = np.exp(z - z.max())
    return int(finite[rng.choice(len(finite), p=p / p.sum())])
