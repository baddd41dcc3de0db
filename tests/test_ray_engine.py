"""The Ray engine (kiku.engine_ray) on a real two-node Ray cluster.

One cluster per module (``tests/ray_cluster.py``): a ``ray start --head`` and a second
``ray start --address`` node, separate processes with one CPU each, so every run's load (its
JSON Lines parsed), describe and embed chunks are spread over two raylets. Real `kiku run` subprocesses, the real MiniLM
embedder, the bundled W&B queries; one test SIGKILLs the second node's embed worker mid-stage.
The one-line hint without Ray is tested in tests/test_engine.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

from cli_helpers import kiku, kiku_command, kiku_env
from conftest import EXAMPLE
from kiku.errors import KikuError
from ray_cluster import CLUSTER_ENV, RayCluster

#: 560 queries in chunks of 40: 14 chunks per map stage, so both nodes get several.
CHUNK_ROWS = "40"
TABLES = ("conversations", "facets", "embeddings", "projection", "cluster_labels", "base_clusters", "clusters",
          "assignments")


def ray_env() -> dict[str, str]:
    """The environment of the nodes and of the `kiku run` drivers that join them."""
    return {**kiku_env(), **CLUSTER_ENV}


@pytest.fixture(scope="module")
def cluster():
    with RayCluster.start(extra_nodes=1, cpus=1, env=ray_env()) as started:
        yield started


@pytest.fixture
def ray_driver_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a driver of the test cluster (``ray.init`` reads the environment)."""
    for name, value in CLUSTER_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "run"
    result = kiku("run", EXAMPLE, "--out", out, "--seed", "0", "--chunk-rows", CHUNK_ROWS)
    assert result.returncode == 0, result.stderr
    return out


def ray_run_command(out: Path, address: str) -> list[str]:
    return kiku_command("run", EXAMPLE, "--out", out, "--seed", "0", "--chunk-rows", CHUNK_ROWS,
                        "--engine", "ray", "--address", address)


def labels(run: Path) -> dict[str, int]:
    table = pq.read_table(run / "cluster_labels.parquet")
    return dict(zip(table.column("conversation_id").to_pylist(), table.column("label").to_pylist()))


def embeddings(run: Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(run / "embeddings.parquet")
    flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return table.column("conversation_id").to_pylist(), np.asarray(flat).reshape(table.num_rows, -1)


def assert_same_result(local: Path, ray: Path) -> None:
    """Same conversations, same embeddings, same base clusters (ARI >= 0.99), same tables and schemas."""
    local_ids, local_vectors = embeddings(local)
    ray_ids, ray_vectors = embeddings(ray)
    assert ray_ids == local_ids
    np.testing.assert_allclose(ray_vectors, local_vectors, atol=1e-5)
    a, b = labels(local), labels(ray)
    assert sorted(b) == sorted(a) and len(a) == 560
    assert adjusted_rand_score([a[i] for i in local_ids], [b[i] for i in local_ids]) >= 0.99
    assert sorted(p.name for p in ray.glob("*.parquet")) == sorted(p.name for p in local.glob("*.parquet"))
    for name in TABLES:
        assert pq.read_schema(ray / f"{name}.parquet").equals(pq.read_schema(local / f"{name}.parquet")), name
    assert not (ray / ".parts").exists()


def test_import_kiku_does_not_import_ray() -> None:
    code = "import sys, kiku, kiku.cli, kiku.engine, kiku.pipeline; print('ray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=kiku_env(), check=True)
    assert result.stdout.strip() == "False"


def test_llm_facets_run_on_the_cluster_and_give_the_local_engines_facets(cluster: RayCluster, tmp_path: Path) -> None:
    """``--llm local/... --llm-scope conversations --engine ray``: each describe actor holds its own
    copy of the LLM describer and the real SmolLM2 model; usage and answers come back to the driver."""
    pytest.importorskip("llama_cpp", reason="needs llama-cpp-python: pip install 'kiku[local]'")
    rows = [json.loads(line) for line in EXAMPLE.read_text().splitlines()[:8]]
    source = tmp_path / "queries.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = ["--seed", "0", "--chunk-rows", "2", "--llm", "local/smollm2-135m", "--llm-scope", "conversations",
            "--clusters", "2", "--max-top", "2"]

    def run(out: Path, cache: str, *extra: str) -> dict:
        env = {**ray_env(), "KIKU_CACHE_DIR": str(tmp_path / cache), "KIKU_LLM_THREADS": "1"}
        result = subprocess.run(kiku_command("run", source, "--out", out, *args, *extra), capture_output=True,
                                text=True, env=env, timeout=800)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads((out / "manifest.json").read_text())

    on_ray = run(tmp_path / "ray", "cache-ray", "--engine", "ray", "--address", cluster.address)
    local = run(tmp_path / "local", "cache-local")
    describe = on_ray["stages"]["describe"]
    assert describe["engine"] == "ray" and describe["chunks"] == describe["chunks_computed"] == 4
    # every call the actors made is counted in the driver's manifest, as a local run counts its own
    assert on_ray["llm"]["by_stage"]["describe"]["calls"] == local["llm"]["by_stage"]["describe"]["calls"] >= 8
    assert on_ray["llm"]["by_stage"]["describe"]["prompt_tokens"] == local["llm"]["by_stage"]["describe"]["prompt_tokens"]
    facets = pq.read_table(tmp_path / "ray" / "facets.parquet")
    assert facets.equals(pq.read_table(tmp_path / "local" / "facets.parquet"))
    assert all(facets.column("summary").to_pylist()) and facets.num_rows == 8
    # every answer is in the driver's cache: a local run over it makes no describe call
    again = run(tmp_path / "again", "cache-ray")
    assert again["llm"]["by_stage"]["describe"]["calls"] == 0
    assert again["llm"]["by_stage"]["describe"]["cache_hits"] >= 8


def test_the_ray_engine_gives_the_local_engines_run(cluster: RayCluster, local_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "ray"
    result = subprocess.run(ray_run_command(out, cluster.address), capture_output=True, text=True, env=ray_env(),
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_result(local_run, out)
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    for stage in ("load", "describe", "embed"):  # load: the JSON Lines parsed on the cluster
        assert stages[stage]["engine"] == "ray"
        assert stages[stage]["chunks"] == stages[stage]["chunks_computed"] == 14
    # the same tables, value for value (the engine never changes what a run produces)
    for name in ("facets", "embeddings", "cluster_labels", "clusters", "assignments"):
        assert pq.read_table(out / f"{name}.parquet").equals(pq.read_table(local_run / f"{name}.parquet")), name


def test_a_killed_worker_on_the_second_node_loses_nothing(cluster: RayCluster, local_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "ray-killed"
    killed: list[str] = []
    run = subprocess.Popen(ray_run_command(out, cluster.address), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=ray_env())

    def kill_the_second_nodes_embed_worker() -> None:
        deadline = time.monotonic() + 300
        while run.poll() is None and time.monotonic() < deadline:
            # a worker of the second raylet executing an embed chunk (Ray titles it ...EmbedChunkActor)).submit)
            # once some chunks are done, so the stage is well under way and parts exist
            busy = cluster.workers_of_node(1, "MapBatches(EmbedChunkActor)).submit")
            done = len(list((out / ".parts" / "embeddings").glob("part-*.json")))
            if busy and done >= 2 and not (out / "embeddings.parquet").exists():
                pid, title = busy[0]
                signal_sent = _kill(pid)
                if signal_sent:
                    killed.append(f"{pid} {title} after {done} of 14 embed parts")
                    return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_the_second_nodes_embed_worker, daemon=True)
    watcher.start()
    stdout, stderr = run.communicate(timeout=600)
    watcher.join(timeout=5)
    assert killed, "no embed worker of the second node was seen busy"
    print("killed:", killed[0])  # shown with -s
    assert run.returncode == 0, stderr[-3000:]
    assert_same_result(local_run, out)
    embed = json.loads((out / "manifest.json").read_text())["stages"]["embed"]
    assert embed["chunks"] == embed["chunks_computed"] == 14
    assert pq.read_table(out / "embeddings.parquet").num_rows == 560
    assert pa.compute.count_distinct(pq.read_table(out / "embeddings.parquet").column("conversation_id")).as_py() == 560


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def test_the_cluster_assignment_after_a_sample_fit_runs_on_the_cluster(cluster: RayCluster, local_run: Path,
                                                                        tmp_path: Path, ray_driver_env: None) -> None:
    from kiku.cluster import KMeansClusterer
    from kiku.engine_ray import RayEngine
    from kiku.pipeline import Progress, load_embeddings, stage_cluster
    from kiku.store import RunStore

    store = RunStore(tmp_path / "run")
    store.write_table("embeddings", pq.read_table(local_run / "embeddings.parquet"))
    _, vectors = load_embeddings(store)
    # fitted on 200 of the 560 rows, so the other rows are assigned to the fitted centres
    expected = KMeansClusterer(seed=0, fit_sample_size=200).fit_predict(vectors)
    engine = RayEngine(address=cluster.address)
    try:
        details = stage_cluster(store, KMeansClusterer(seed=0, fit_sample_size=200), Progress(), engine=engine,
                                chunk_rows=100)
        import ray

        assert ray.is_initialized()  # the assignment went through the cluster
    finally:
        engine.close()
    labels = store.read_table("cluster_labels").column("label").to_numpy()
    assert details["rows"] == 560
    np.testing.assert_array_equal(labels, expected)


class FailsOnChunk:
    """A chunk function that raises a KikuError on the chunk whose ``x`` is ``bad``."""

    def __init__(self, bad: int) -> None:
        self.bad = bad

    def fingerprint(self) -> str:
        return f"fails-on-{self.bad}"

    def __call__(self, table: pa.Table, progress: object = None) -> pa.Table:
        if table.column("x")[0].as_py() == self.bad:
            raise KikuError(f"the chunk with x={self.bad} is bad")
        return table


def test_an_error_of_the_chunk_function_reaches_the_driver_unchanged(cluster: RayCluster, ray_driver_env: None) -> None:
    from ray import cloudpickle

    from kiku.engine import Chunk
    from kiku.engine_ray import RayEngine

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)  # the workers cannot import this test module
    engine = RayEngine(address=cluster.address)
    try:
        chunks = [Chunk(i, str(i), pa.table({"x": [i]}), 1) for i in range(4)]
        with pytest.raises(KikuError, match="the chunk with x=2 is bad"):
            list(engine.run(FailsOnChunk(2), chunks, lambda amount: None))
    finally:
        engine.close()
        cloudpickle.unregister_pickle_by_value(module)
