"""Every ```python block of docs/capture-api.md runs, against a loopback Sentry ingest."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from otel_sentry import _logging
from otel_sentry.testing import SentryIngest
from tests.support import relay
from tests.support.runtime import sentry_runtime

DOC = Path(__file__).resolve().parents[1] / "docs" / "capture-api.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs_and_its_events_are_valid(index: int, sentry_ingest: SentryIngest) -> None:
    source = BLOCKS[index]
    with sentry_runtime(sentry_ingest) as runtime:
        _logging.install(logging.ERROR, logging.INFO)
        try:
            exec(compile(source, f"{DOC.name} block {index + 1}", "exec"), {"__name__": "docs_example"})
        finally:
            _logging.uninstall()
        assert runtime.flush(5)
    code = [
        line
        for line in source.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "from", "import"))
    ]
    if code:  # every example that does something reports something
        assert sentry_ingest.wait_for(lambda i: len(i.events()) >= 1, 5), source
    for event in sentry_ingest.events():
        relay.assert_valid(event)
