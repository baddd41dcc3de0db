"""The Ray engine (``kiku run --engine ray [--address ADDRESS]``): the map stages on a Ray cluster.

It implements ``kiku.engine.Engine``: ``run(fn, chunks, progress)`` yields ``(chunk.index,
fn(chunk.table))`` once per chunk. How:

- **Connect.** ``ray.init(address=ADDRESS)`` joins a running cluster (``ray start --head`` on
  one machine, ``ray start --address HEAD:PORT`` on the others; ``auto`` finds the one this
  machine belongs to); without an address a local Ray is started for the run and stopped
  after it. Every node needs the same kiku (and its extras) installed: the workers import
  the chunk functions from it.
- **Data.** The driver cuts the chunks (``kiku.engine``) and hands them to Ray Data as Arrow
  blocks (``ray.data.from_arrow``: the blocks go into the cluster's object store, so the
  workers never read the driver's disk), a window of at most ``window`` chunks at a time,
  so the driver never holds more than a window of input.
- **Models held by actors.** ``map_batches`` runs a fixed pool of actors
  (``ray.data.ActorPoolStrategy(size=workers)``, one CPU each by default, one per cluster CPU).
  Each actor receives the chunk function once (pickled without its model) and loads the model
  on its first chunk, then keeps it for every chunk it is given: a chunk is one block, one
  call (``batch_size=None``).
- **Results come back to the driver**, which writes each part through ``RunStore`` exactly
  as the local engine does (``kiku.engine.map_chunks``): the run folder exists only on the
  driver's disk, never on a worker's.
- **Fault tolerance.** Ray Data's actor pools restart a dead actor and retry the calls it
  had in flight (their defaults, ``max_restarts=-1`` and ``max_task_retries=-1``, in Ray 2.60's
  ``ActorPoolMapOperator``; ``tests/test_ray_engine.py`` kills a worker to hold them to it); the
  input blocks stay in the object store until their chunk is done. A worker killed mid-chunk
  (its process, or its node) therefore costs the chunk's time again, never a chunk: every
  chunk comes back exactly once (checked here), and since a chunk function is a pure function
  of its chunk, the result is the one an uninterrupted run gives.

Ray is imported here only, and this module only by ``kiku.engine.make_engine`` when
``--engine ray`` is asked for: ``import kiku`` never imports Ray.

Example:
    >>> import pyarrow as pa
    >>> from kiku.engine import Chunk
    >>> engine = RayEngine(workers=1)                                          # doctest: +SKIP
    >>> chunks = [Chunk(i, str(i), pa.table({"x": [i]}), 1) for i in range(3)]
    >>> sorted(i for i, _ in engine.run(lambda t, progress=None: t, chunks, print))   # doctest: +SKIP
    [0, 1, 2]
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from kiku.errors import KikuError

if TYPE_CHECKING:
    from kiku.engine import Chunk, ChunkFunction

#: The column that carries a chunk's index through Ray Data (added before, removed after ``fn``).
CHUNK_COLUMN = "__kiku_chunk"
#: Chunks handed to Ray Data at once (their input is in the object store until they are done).
DEFAULT_WINDOW = 64
#: Object store of a Ray started by kiku (bytes): enough for a window of chunks in flight.
LOCAL_OBJECT_STORE = 1 << 30


def _ray() -> Any:
    """``import ray`` (and Ray Data, the ``[data]`` extra) with kiku's one-line hint when missing."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise KikuError("--engine ray needs Ray; install it with: pip install 'kiku[ray]'") from None
    return ray


def limit_threads(fn: Any, threads: int) -> None:
    """Give ``fn``'s model (``fn.embedder`` / ``fn.describer`` or ``fn`` itself) ``threads``
    CPU threads when it has a ``threads`` setting left at its default (None: all cores), and
    cap a local LLM's (``fn.describer.client.backend.n_threads``) at ``threads``.

    A worker holding one CPU of a node must not spread its model over all the node's cores
    (the other workers of the node have theirs). Never changes a result: threads are not in
    any fingerprint (``kiku.stages.UNFINGERPRINTED``; llama.cpp decodes greedily, seeded).

    >>> class Model:
    ...     threads = None
    >>> class Fn:
    ...     embedder = Model()
    >>> fn = Fn(); limit_threads(fn, 1); fn.embedder.threads
    1
    """
    describer = getattr(fn, "describer", None)
    for part in (fn, getattr(fn, "embedder", None), describer):
        if part is not None and hasattr(part, "threads") and part.threads is None:
            part.threads = max(1, int(threads))
    backend: Any = getattr(getattr(describer, "client", None), "backend", None)
    if isinstance(getattr(backend, "n_threads", None), int):
        backend.n_threads = max(1, min(backend.n_threads, int(threads)))


def table_to_bytes(table: pa.Table) -> bytes:
    """An Arrow table as Arrow IPC stream bytes (what a chunk's output travels back as).

    >>> bytes_to_table(table_to_bytes(pa.table({"a": [1, 2]}))).to_pylist()
    [{'a': 1}, {'a': 2}]
    """
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def bytes_to_table(data: bytes) -> pa.Table:
    """The inverse of :func:`table_to_bytes`."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


#: One row per finished chunk: its index and its output table (Arrow IPC). A row is never
#: split between Ray blocks, so a chunk always comes back whole, in one piece.
RESULT_SCHEMA = pa.schema([(CHUNK_COLUMN, pa.int64()), ("output", pa.large_binary())])


class ChunkActor:
    """A Ray Data actor: holds one chunk function (and so its model) for all the chunks it gets.

    ``__call__(block)`` takes one chunk's input table with its :data:`CHUNK_COLUMN` and returns
    one :data:`RESULT_SCHEMA` row: the chunk's index and ``fn``'s output.

    >>> actor = ChunkActor(lambda t, progress=None: t.append_column("y", t.column("x")))
    >>> row = actor(pa.table({"x": [1], CHUNK_COLUMN: [4]})).to_pylist()[0]
    >>> row[CHUNK_COLUMN], bytes_to_table(row["output"]).to_pylist()
    (4, [{'x': 1, 'y': 1}])
    """

    def __init__(self, fn: Callable[..., pa.Table], threads: int | None = None) -> None:
        self.fn = fn
        if threads:
            limit_threads(fn, threads)

    def __call__(self, block: pa.Table) -> pa.Table:
        indexes = block.column(CHUNK_COLUMN).unique().to_pylist()
        if len(indexes) != 1:
            raise KikuError(f"a Ray block held rows of chunks {sorted(indexes)}; one chunk per block is expected")
        output = self.fn(block.drop_columns([CHUNK_COLUMN]))
        return pa.table({CHUNK_COLUMN: [int(indexes[0])], "output": [table_to_bytes(output)]}, schema=RESULT_SCHEMA)


def actor_class(fn: Any) -> type:
    """The :class:`ChunkActor` subclass named after ``fn``'s class (``EmbedChunkActor``), so Ray's
    process titles and logs say which stage a worker serves.

    >>> class EmbedChunk: ...
    >>> actor_class(EmbedChunk()).__name__
    'EmbedChunkActor'
    """
    return type(f"{type(fn).__name__}Actor", (ChunkActor,), {"__doc__": ChunkActor.__doc__})


def original_error(error: BaseException) -> BaseException:
    """The exception a chunk function raised on a worker, out of Ray's wrappers (``RayTaskError``,
    ``UserCodeException``): a ``KikuError`` first, else the innermost cause; ``error`` itself
    when nothing wraps it.

    >>> try:
    ...     try:
    ...         raise KikuError("bad chunk")
    ...     except KikuError as inner:
    ...         raise RuntimeError("wrapped") from inner
    ... except RuntimeError as outer:
    ...     str(original_error(outer))
    'bad chunk'
    """
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 20:
        chain.append(chain[-1].__cause__)
    for link in chain:
        cause = getattr(link, "cause", None)  # RayTaskError keeps the worker's exception here
        if isinstance(cause, BaseException) and cause not in chain:
            chain.append(cause)
    kiku_errors = [e for e in chain if isinstance(e, KikuError)]
    # Ray re-raises a worker's exception as a class deriving from both RayTaskError and its type:
    # prefer the worker's own instance (its ``cause``), whose message is the one line kiku wrote.
    own = [e for e in kiku_errors if type(e).__module__.startswith("kiku.")]
    if own or kiku_errors:
        return (own or kiku_errors)[0]
    return chain[-1]


def _check_shippable(fn: Any) -> None:
    """A one-line KikuError when ``fn`` cannot be pickled for the workers (instead of Ray's traceback)."""
    from ray import cloudpickle

    try:
        cloudpickle.dumps(fn)
    except Exception as exc:  # any pickling failure means the same here
        component = next((getattr(fn, a) for a in ("describer", "embedder") if hasattr(fn, a)), fn)
        raise KikuError(f"--engine ray: {type(component).__name__} cannot be sent to Ray workers ({exc}); "
                        "use --engine local with it") from None


def _quiet_ray_data(ray: Any) -> None:
    """No progress bars or per-dataset banners from Ray Data (kiku shows its own progress)."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.execution_options.preserve_order = False
    context.raise_original_map_exception = True  # a chunk function's own error, not "UDF failed to process a data block"
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.ERROR)


class RayEngine:
    """Run chunk functions on a Ray cluster with Ray Data (see the module docstring).

    Args:
        address: the cluster to join (``HOST:PORT`` of ``ray start --head``, ``ray://HOST:10001``
            or ``auto``); None starts a local Ray for the run (``local_cpus`` CPUs).
        workers: actors in the pool (default: one per CPU of the cluster).
        cpus_per_worker: CPUs each actor reserves (its model gets that many threads).
        window: chunks handed to Ray Data at once.
        local_cpus: CPUs of a Ray this engine starts itself (default: all of this machine's).

    Connecting is lazy (first :meth:`run`), so building the engine is cheap and checks nothing.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, cpus_per_worker: float = 1.0,
                 window: int = DEFAULT_WINDOW, local_cpus: int | None = None) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        if cpus_per_worker <= 0:
            raise ValueError("cpus_per_worker must be > 0")
        self.address = address
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.window = window
        self.local_cpus = local_cpus
        self._ray: Any = None
        self._owns_connection = False

    # -- connection ---------------------------------------------------------------------------
    def connect(self) -> Any:
        """Join (or start) the Ray cluster once; returns the ``ray`` module."""
        if self._ray is not None:
            return self._ray
        ray = _ray()
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING, "configure_logging": True}
        self._owns_connection = not ray.is_initialized()  # a caller's own ray.init() is left alone at close()
        if self._owns_connection:
            try:
                if self.address:
                    ray.init(address=self.address, **kwargs)
                else:
                    ray.init(num_cpus=self.local_cpus or os.cpu_count() or 1, object_store_memory=LOCAL_OBJECT_STORE,
                             include_dashboard=False, **kwargs)
            except ConnectionError as exc:
                raise KikuError(f"--address {self.address}: cannot reach a Ray cluster there ({exc}); "
                                "start one with `ray start --head` or check the address") from None
        _quiet_ray_data(ray)
        self._ray = ray
        return ray

    def pool_size(self) -> int:
        """Actors in the pool: ``workers``, else as many as the cluster's CPUs hold."""
        if self.workers:
            return self.workers
        cpus = float(self.connect().cluster_resources().get("CPU", 1))
        return max(1, int(cpus // self.cpus_per_worker))

    # -- the engine ---------------------------------------------------------------------------
    def run(self, fn: ChunkFunction, chunks: Iterable[Chunk], progress: Callable[[int], None]) -> Iterator[tuple[int, pa.Table]]:
        """Yield ``(chunk.index, fn(chunk.table))`` once per chunk, in the order they finish."""
        iterator = iter(chunks)
        while True:
            window = list(itertools.islice(iterator, self.window))
            if not window:
                return
            yield from self._run_window(fn, window, progress)

    def _run_window(self, fn: ChunkFunction, window: list[Chunk], progress: Callable[[int], None]) -> Iterator[tuple[int, pa.Table]]:
        ray = self.connect()
        work = {chunk.index: chunk.work for chunk in window}
        blocks = [chunk.table.append_column(CHUNK_COLUMN, pa.array([chunk.index] * chunk.table.num_rows, pa.int64()))
                  for chunk in window if chunk.table.num_rows]
        # A chunk without rows has an empty output: fn decides its columns, here, not on a worker.
        for chunk in window:
            if not chunk.table.num_rows:
                yield chunk.index, fn(chunk.table)
                progress(chunk.work)
        if not blocks:
            return
        _check_shippable(fn)
        size = min(self.pool_size(), len(blocks))
        dataset = ray.data.from_arrow(blocks).map_batches(
            actor_class(fn),
            fn_constructor_args=(fn,),
            fn_constructor_kwargs={"threads": max(1, int(self.cpus_per_worker))},
            batch_size=None,
            batch_format="pyarrow",
            zero_copy_batch=True,
            compute=ray.data.ActorPoolStrategy(size=size),
            num_cpus=self.cpus_per_worker,
        )
        expected = {chunk.index for chunk in window if chunk.table.num_rows}
        returned: set[int] = set()
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                for index, output in zip(batch.column(CHUNK_COLUMN).to_pylist(), batch.column("output").to_pylist()):
                    if index not in expected or index in returned:
                        continue  # a retried chunk that came back twice: the same table (fn is pure)
                    returned.add(index)
                    yield index, bytes_to_table(output)
                    progress(work[index])
        except Exception as exc:
            cause = original_error(exc)
            if cause is exc:
                raise
            raise cause from None
        missing = expected - returned
        if missing:
            raise KikuError(f"the Ray engine lost chunks {sorted(missing)} of {len(expected)}; run again to redo them")

    def close(self) -> None:
        """Disconnect from the cluster (a Ray started for the run stops with it); a connection the
        caller made with ``ray.init()`` before the run stays open."""
        if self._ray is not None and self._owns_connection:
            self._ray.shutdown()
        self._ray = None
