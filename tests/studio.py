"""A real ``impasto serve`` on a free loopback port, for the tests that need a server process.

The process runs impasto's own command line (``impasto.cli.commands.main(["serve", ...])``) with one
change: jobs get the narrow stand-in network (:func:`impasto.testing.narrow_vgg`), so a tiny job
takes milliseconds. Starting waits for the studio to answer (a deadline, no fixed sleep);
stopping sends SIGINT, as Ctrl-C would, and waits for the process to end.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

START_SECONDS = 120.0  # importing torch on a busy 2-core machine
STOP_SECONDS = 20.0

_LAUNCH = """
import functools, sys
import torch
torch.set_num_threads(1)
from impasto.testing import narrow_vgg

@functools.lru_cache(maxsize=8)
def standin(weights, weights_format, pooling, device, network="raw", dtype="fp32"):
    net = narrow_vgg(pooling)
    return net.to(torch.bfloat16) if dtype == "bf16" else net

from impasto.cli.commands import main
from impasto.net.network import network_loader
with network_loader(standin):
    sys.exit(main(["serve", *sys.argv[1:]]))
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(
    port: int, workdir: Path, log: Path, *flags: str, env: dict[str, str] | None = None, open_files: int | None = None
) -> subprocess.Popen[bytes]:
    """``impasto serve`` (with the stand-in network) as a child process writing to ``log``;
    ``open_files``: its limit of open files (``ulimit -n``)."""
    argv = ["--port", str(port), "--workdir", str(workdir), *flags]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, *argv], stdout=out, stderr=out, env=env, preexec_fn=limit
        )


class Studio:
    """``impasto serve --port P FLAGS...`` as a child process; ``url`` is its base address.

    ``env``: variables set for the child on top of this process's (``TMPDIR``: where it spools uploads).
    """

    def __init__(
        self, workdir: Path, *flags: str, env: dict[str, str] | None = None, open_files: int | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log = workdir.parent / f"serve-{self.port}.log"
        self.process = launch(self.port, workdir, self.log, *flags, env=env, open_files=open_files)
        self._wait_ready()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"impasto serve exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/api/options", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling the port, with the deadline above
        self.stop()
        raise AssertionError(f"impasto serve did not answer within {START_SECONDS:g} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def healthy(self) -> bool:
        return self.process.poll() is None and httpx.get(f"{self.url}/api/options", timeout=5.0).status_code == 200

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def rss_kib(self, key: str = "VmRSS") -> int:
        """Resident memory now (``VmRSS``) or at its peak so far (``VmHWM``), KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {key} for process {self.pid}")

    def stop(self, sig: int = signal.SIGINT) -> int:
        """SIGINT, as Ctrl-C (or ``sig``); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
