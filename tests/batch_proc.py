"""``impasto batch`` in a process of its own, on the narrow stand-in network: the tests' real batch processes.

    python tests/batch_proc.py [--hold FOLDER:NAME] ARGS...

runs ``impasto.cli.commands.main(["batch", *ARGS])`` and exits with its code. ``--hold FOLDER:NAME``: when
item NAME starts, write ``FOLDER/holding`` and wait until ``FOLDER/release`` exists, so that a test
can act (start a second batch, kill this one) while this one is mid-batch, at a known point.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def main(argv: list[str]) -> int:
    from impasto import cli
    from impasto.net.network import network_loader
    from impasto.testing import narrow_vgg

    patch = pytest.MonkeyPatch()  # as tests/conftest.py patches: the stand-in network, fp32
    network_loader(lambda _w, _f, pool, *_: narrow_vgg(pool)).__enter__()  # for the process's life
    patch.setattr(importlib.import_module("impasto.net.network"), "cpu_bf16", lambda: (False, "fp32 in the tests"))
    if argv[:1] == ["--hold"]:
        folder, _, held = argv[1].rpartition(":")
        argv = argv[2:]
        batch = importlib.import_module("impasto.batch.driver")
        real = batch.run_item

        def run_item(item: Any, *args: Any, **kwargs: Any) -> Any:
            if item.name == held:
                (Path(folder) / "holding").write_text("")
                while not (Path(folder) / "release").exists():
                    time.sleep(0.01)
            return real(item, *args, **kwargs)

        patch.setattr(batch, "run_item", run_item)
    return cli.main(["batch", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
