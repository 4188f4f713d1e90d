"""The items of a batch as Ray tasks on an existing cluster (``impasto batch ... --ray [ADDRESS]``).

Each task runs :func:`impasto.batch.run_item` in a Ray worker and returns the encoded PNG; the
driver writes it (atomically) and the manifest; the input images travel as bytes read by the
driver, so the workers need no shared file system (the init image and masks, ``--init FILE`` and
``--content-mask``/``--style-masks``, travel as paths: they must exist on every node).
A task asks for one GPU where the cluster has GPUs, else ``cpus`` CPUs. A worker that dies is
retried by Ray (``max_retries``); an item that fails in the library is recorded, not retried.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..image import encode_png
from .plan import Item
from .worker import Run, reason_of, run_item

if TYPE_CHECKING:
    from ..net.vgg import VGG19

__all__ = ["HOLD_ENV", "MAX_RETRIES", "check_reachable", "require_ray", "run_ray"]

MAX_RETRIES = 3  # times Ray reruns a task whose worker process died
# Test hook: "FOLDER:NAME" makes the worker running item NAME write FOLDER/holding-PID and wait
# until FOLDER/release exists, so that a test can kill it mid-item deterministically.
HOLD_ENV = "IMPASTO_BATCH_TEST_HOLD"


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("`ray` needs Ray, an optional extra: pip install 'impasto[ray]'") from None
    return ray


def check_reachable(address: str) -> None:
    """A head node's ``host:port`` that refuses connections fails in seconds, not after Ray's minutes of retries."""
    if address == "auto" or address.startswith("ray://") or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot reach a Ray head node at '{address}' ({reason_of(exc)})") from None


def _test_hold(name: str) -> None:
    spec = os.environ.get(HOLD_ENV)
    if not spec:
        return
    folder, _, held = spec.rpartition(":")
    release = Path(folder) / "release"
    if held != name or release.exists():
        return
    tmp = Path(folder) / f".holding-{os.getpid()}"
    tmp.write_text(str(os.getpid()))
    tmp.rename(Path(folder) / f"holding-{os.getpid()}")
    while not release.exists():
        time.sleep(0.02)


def _work(item: Item, inputs: dict[str, bytes], network: VGG19 | None, max_pixels: int) -> dict[str, Any]:
    """In a Ray worker: one item, from its input files' bytes; the PNG or the reason it failed."""
    import tempfile

    _test_hold(item.name)
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="impasto-") as tmp:
            local = {}
            for key in ("content", "style"):
                path = Path(tmp) / key / Path(getattr(item, key)).name
                path.parent.mkdir()
                path.write_bytes(inputs[key])
                local[key] = str(path)
            here = Item(**{**item.__dict__, **local})
            image, params = run_item(here, network, max_pixels=max_pixels)
            params |= {"content": Path(item.content).name, "styles": [Path(item.style).name]}
    except Exception as exc:  # the library's failure: recorded by the driver, not retried
        return {"ok": False, "reason": reason_of(exc), "pid": os.getpid()}
    return {"ok": True, "png": encode_png(image, params), "seconds": time.perf_counter() - start, "pid": os.getpid()}


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}".encode()  # load_image then says what it is


def run_ray(run: Run, todo: list[Item], address: str, *, network: VGG19 | None, cpus: float, max_pixels: int) -> None:
    """Run ``todo`` on the Ray cluster at ``address`` (``auto``: this machine's), recording into ``run``."""
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        check_reachable(address)
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot connect to the Ray cluster at '{address}': {reason_of(exc)}") from None
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": cpus}
        task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(_work).options(**resources)
        net_ref = ray.put(network) if network is not None else None  # shipped once, not per task
        pending = {}
        for item in todo:
            inputs = {"content": _read(item.content), "style": _read(item.style)}
            pending[task.remote(item, inputs, net_ref, max_pixels)] = item
            run.started(item)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    item = pending.pop(ref)
                    try:
                        out = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # retries used up, or the cluster went away
                        run.failed(item, f"Ray: {reason_of(exc)}")
                        continue
                    if out["ok"]:
                        run.succeeded(item, out["png"], out["seconds"])
                    else:
                        run.failed(item, out["reason"])
        except BaseException:  # Ctrl-C, or an output that cannot be written: the rest is not wanted now
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started_here:
            ray.shutdown()
