"""A real local Ray cluster for tests and benchmarks: ``ray start --head --block`` on free ports, stopped after.

The cluster runs in the foreground (``--block``) so that terminating that one process, which the
test started, takes its raylet, GCS and workers down with it; nothing else on the machine is touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["free_port", "local_cluster"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_cluster(cpus: int = 2, env: dict[str, str] | None = None, object_store: int = 200 * 2**20) -> Iterator[str]:
    """A one-node Ray cluster with ``cpus`` CPUs (worker processes of one thread) and an object store of
    ``object_store`` bytes (beyond it, Ray spills objects to disk); yields its GCS address."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="r15-", dir="/tmp")  # short: Ray's socket paths have a length limit
    ray_bin = Path(sys.executable).with_name("ray")
    # the workers at the driver's priority (Ray starts them at niceness 15 by default): on a shared
    # machine a comparison with a local run is then fair
    quiet = {"OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_niceness": "0"}
    env = os.environ | quiet | (env or {})
    cmd = [str(ray_bin), "start", "--head", "--block", "--num-cpus", str(cpus), "--port", str(port)]
    cmd += ["--node-ip-address", "127.0.0.1", "--temp-dir", temp, "--include-dashboard", "false"]
    cmd += ["--object-store-memory", str(object_store), "--disable-usage-stats"]
    for flag in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port"):
        cmd += [flag, str(free_port())]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # until the cluster says it is up (or the process ends)
        lines.append(line)
        if "Ray runtime started" in line:
            break
    else:
        raise RuntimeError("ray start failed:\n" + "".join(lines))
    drain = threading.Thread(target=proc.stdout.read, daemon=True)  # keep its pipe drained
    drain.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drain.join(timeout=10)
        proc.stdout.close()
        shutil.rmtree(temp, ignore_errors=True)
