"""A real two-node Ray cluster on this machine, for the Ray engine's tests and benchmark.

``RayCluster.start()`` runs ``ray start --head`` and a second ``ray start --address HEAD`` as
separate processes (one CPU each, their own temporary folder), so a run spans two raylets as
it would two machines. ``stop()`` ends exactly the processes of this cluster (those whose
command line names its temporary folder, and the workers of its raylets): never
``ray stop``, which stops every Ray of the machine.

    with RayCluster.start() as cluster:
        subprocess.run(["kiku", "run", ..., "--engine", "ray", "--address", cluster.address])
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Object store per node (bytes): small, the machine is shared.
OBJECT_STORE = 300 * 1024 * 1024


#: The environment of the nodes and of the drivers that join them. Token authentication off,
#: explicitly: Ray 2.60 turns it on for a ``ray start --head`` when ``~/.ray/auth_token`` exists
#: (a local ``ray.init()`` writes one), while a joining ``ray start --address`` stays off.
CLUSTER_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_cli() -> str:
    """The ``ray`` command of this interpreter's environment."""
    candidate = Path(sys.executable).parent / "ray"
    return str(candidate) if candidate.exists() else "ray"


def processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process of the machine."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3:
            rows.append((int(parts[0]), int(parts[1]), parts[2]))
    return rows


@dataclass
class RayCluster:
    """A head and ``len(workers)`` more nodes started with ``ray start`` (see the module docstring)."""

    address: str
    temp_dir: Path
    node_sockets: list[str] = field(default_factory=list)  # raylet socket of each node, head first

    @classmethod
    def start(cls, extra_nodes: int = 1, cpus: int = 1, env: dict[str, str] | None = None) -> RayCluster:
        """Start the head and ``extra_nodes`` more nodes of ``cpus`` CPUs each; ``env`` is the nodes'
        environment (their workers inherit it: give them the same ``PYTHONPATH`` as the driver)."""
        # Ray's socket paths must stay short (AF_UNIX: 107 bytes): a short folder under /tmp.
        temp_dir = Path(tempfile.mkdtemp(prefix="kr", dir="/tmp"))
        port = free_port()
        address = f"127.0.0.1:{port}"
        env = {**(env or os.environ), **CLUSTER_ENV}
        common = ["--num-cpus", str(cpus), "--object-store-memory", str(OBJECT_STORE), "--disable-usage-stats",
                  "--node-ip-address", "127.0.0.1"]
        cluster = cls(address=address, temp_dir=temp_dir)
        try:
            _ray_start(["--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", str(temp_dir), *common],
                       env)
            for _ in range(extra_nodes):
                _ray_start(["--address", address, *common], env)
            cluster.wait_for_nodes(1 + extra_nodes)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def raylets(self) -> list[tuple[int, str]]:
        """(pid, socket) of this cluster's raylets, the head's first."""
        found = []
        for pid, _, args in processes():
            if "/raylet/raylet " in args and str(self.temp_dir) in args:
                socket_arg = next(a for a in args.split() if a.startswith("--raylet_socket_name="))
                found.append((pid, socket_arg.split("=", 1)[1]))
        return sorted(found, key=lambda item: item[1])  # "raylet" < "raylet.1" < ...

    def wait_for_nodes(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.raylets()) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray cluster at {self.address} has {len(self.raylets())} of {count} nodes")
            time.sleep(0.5)
        self.node_sockets = [s for _, s in self.raylets()]

    def workers_of_node(self, node: int, title: str) -> list[tuple[int, str]]:
        """(pid, process title) of node ``node``'s workers whose title contains ``title``."""
        raylets = self.raylets()
        if node >= len(raylets):
            return []
        raylet_pid = raylets[node][0]
        return [(pid, args) for pid, ppid, args in processes() if ppid == raylet_pid and title in args]

    def own_pids(self) -> list[int]:
        """Every process of this cluster: those naming its folder, and their children (workers)."""
        table = processes()
        roots = {pid for pid, _, args in table if str(self.temp_dir) in args and pid != os.getpid()}
        children = {pid for pid, ppid, _ in table if ppid in roots}
        return sorted(roots | children)

    def stop(self) -> None:
        """End this cluster's processes (TERM, then KILL after 5 s) and remove its folder."""
        pids = self.own_pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
                time.sleep(0.2)
            pids = [pid for pid in pids if _alive(pid)]
            if not pids:
                break
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ray_start(args: list[str], env: dict[str, str]) -> None:
    """``ray start ARGS``; its last output lines in the error when it fails."""
    result = subprocess.run([ray_cli(), "start", *args], env=env, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"ray start {' '.join(args[:2])} failed ({result.returncode}):\n{tail}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
