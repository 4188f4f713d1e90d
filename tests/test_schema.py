"""Schemathesis against the studio's own ``/openapi.json``, served by a real ``impasto serve``.

Schemathesis's engine (what its command line runs) sends generated requests, valid and invalid,
to every operation of the schema; the run's configuration is ``tests/schemathesis.toml`` (seed,
examples per operation, checks: no 5xx, documented status codes, content types and bodies). The
test fails on any failed check or engine error, checks that every operation was exercised, that
the server is still healthy and that its log shows no server error. With
``IMPASTO_SCHEMA_SUMMARY=FILE`` it writes the counts there (docs/reliability.md quotes them).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import httpx
import pytest
import schemathesis
from schemathesis.engine import Status, events
from studio import Studio

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.mark.slow
def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    flags = ["--max-size", "128", "--max-steps", "10", "--max-queued", "4", "--keep-jobs", "20"]
    studio = Studio(tmp_path / "work", *flags, "--upload-seconds", "30", "--max-upload-bytes", "1000000")
    try:
        schema = schemathesis.openapi.from_url(
            f"{studio.url}/openapi.json", config=schemathesis.Config.from_path(CONFIG)
        )
        requests: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        failures: list[str] = []
        for event in schemathesis.engine.from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                for case_id, interaction in event.recorder.interactions.items():
                    requests[event.recorder.cases[case_id].value.operation.label] += 1
                    if interaction.response is not None:
                        statuses[str(interaction.response.status_code)] += 1
                for checks in event.recorder.checks.values():
                    failures += [f"{event.recorder.label}: {c.name}: {c.failure_info}" for c in checks
                                 if c.status == Status.FAILURE]  # fmt: skip
            elif isinstance(event, events.NonFatalError | events.FatalError):
                failures.append(f"engine error: {event}")
        paths = httpx.get(f"{studio.url}/openapi.json").json()["paths"]
        operations = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
        summary = {"operations": len(operations), "requests": sum(requests.values()), "failures": len(failures),
                   "per_operation": dict(requests), "statuses": dict(statuses)}  # fmt: skip
        if target := os.environ.get("IMPASTO_SCHEMA_SUMMARY"):
            Path(target).write_text(json.dumps(summary, indent=2, sort_keys=True))
        assert not failures, "\n".join(sorted(set(failures))[:20])
        assert set(requests) == operations, set(requests) ^ operations
        assert min(requests.values()) >= 5, requests
        assert not [code for code in statuses if code.startswith("5")], statuses
        assert studio.healthy()
    finally:
        studio.stop()
    log = studio.log_text()
    assert "Traceback" not in log and "unexpected error" not in log, log[-3000:]
