"""``otel-sentry audit``: recall on planted gaps of every kind, the rules on generated code, the
output formats and the CI gates, run as the command a user (or pre-commit) runs."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otel_sentry._audit_kinds import KINDS
from otel_sentry._audit_scan import scan_source

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "audit_fixture"
PLANTED = re.compile(r"# PLANTED: ([a-z0-9-]+)")


def audit(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_sentry._cli", "audit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def planted() -> set[tuple[str, int, str]]:
    found = set()
    for path in sorted(FIXTURE.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for kind in PLANTED.findall(line):
                found.add((path.relative_to(FIXTURE).as_posix(), number, kind))
    return found


def line_of(relative: str, kind: str) -> int:
    """The line of the first ``# PLANTED: kind`` in a fixture file."""
    for number, line in enumerate((FIXTURE / relative).read_text().splitlines(), 1):
        if f"# PLANTED: {kind}" in line:
            return number
    raise AssertionError(f"{kind} not planted in {relative}")


USERS_DEFAULT = line_of("app/db/users.py", "error-to-default")
CHAT_BACKGROUND = line_of("app/routes/chat.py", "background-task")
USAGE_SWALLOW = line_of("app/tasks/usage.py", "swallowed-exception")


@pytest.fixture(scope="module")
def fixture_report() -> dict:
    result = audit(str(FIXTURE), "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_planted_gap_is_found_and_nothing_else(fixture_report: dict) -> None:
    reported = {(f["path"], f["line"], f["kind"]) for f in fixture_report["findings"]}
    expected = planted()
    assert {k for _, _, k in expected} == set(KINDS), "the fixture plants every kind"
    assert expected - reported == set(), "recall: planted gaps not reported"
    assert reported - expected == set(), "precision: reported lines that are not planted"


def test_coverage_table_counts_the_fixture(fixture_report: dict) -> None:
    overall = fixture_report["layers"][-1]
    findings = fixture_report["findings"]
    gaps = [f for f in findings if f["error_path"] and not f["reaches_sentry"]]
    automatic = [f for f in findings if f["error_path"] and f["reaches_sentry"]]
    assert overall["gaps"] == len(gaps) and overall["automatic"] == len(automatic)
    # the error paths handled correctly (re-raised, captured, logged with the traceback) count too
    assert overall["error_paths"] == len(gaps) + len(automatic) + 4
    assert overall["coverage"] == round(100 * overall["reaching"] / overall["error_paths"], 1)
    layers = {row["name"] for row in fixture_report["layers"]}
    assert {"routes", "services", "db", "background", "overall"} <= layers
    # the pragma'd except block is neither a finding nor an error path
    assert not [
        f for f in findings if f["function"] == "audit_log" and f["kind"] != "undecorated-capture-candidate"
    ]


def test_text_report_says_what_to_do(fixture_report: dict) -> None:
    result = audit(str(FIXTURE))
    out = result.stdout
    assert f"app/db/users.py:{USERS_DEFAULT}: error-to-default [db] in get_user" in out
    assert "fix: keep the fallback but report the failure first" in out
    assert "Caught automatically by otel_sentry" in out and "nothing: otel_sentry captures" in out
    assert re.search(r"OVERALL\s+\d+\s+22\s+13\s+9\s+9\s+59%\s+16", out), out


def test_markdown_and_github_formats(tmp_path: Path) -> None:
    markdown = audit(str(FIXTURE), "--format", "markdown").stdout
    assert (
        "| **OVERALL** |" in markdown
        and f"| `app/db/users.py` | {USERS_DEFAULT} | error-to-default | **no** |" in markdown
    )
    summary = tmp_path / "summary.md"
    result = subprocess.run(
        [sys.executable, "-m", "otel_sentry._cli", "audit", str(FIXTURE), "--format", "github"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "GITHUB_STEP_SUMMARY": str(summary)},
        timeout=120,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert any(
        line.startswith(
            f"::warning file=app/db/users.py,line={USERS_DEFAULT},title=otel-sentry%3A error-to-default::"
        )
        for line in lines
    )
    assert any(line.startswith(f"::notice file=app/routes/chat.py,line={CHAT_BACKGROUND},") for line in lines)
    assert all("\n" not in line for line in lines)
    assert "| **OVERALL** |" in summary.read_text()


def test_gates_and_baseline(tmp_path: Path) -> None:
    assert audit(str(FIXTURE), "--fail-on", "gaps").returncode == 1
    assert audit(str(FIXTURE), "--fail-on", "background-task,thread-not-retrieved").returncode == 1
    assert audit(str(FIXTURE), "--min-coverage", "50").returncode == 0
    below = audit(str(FIXTURE), "--min-coverage", "60")
    assert below.returncode == 1 and "coverage 59.1% is below --min-coverage 60%" in below.stderr
    assert audit(str(FIXTURE), "--fail-on", "no-such-kind").returncode == 2
    baseline = tmp_path / "baseline.json"
    assert audit(str(FIXTURE), "--write-baseline", str(baseline)).returncode == 0
    accepted = audit(str(FIXTURE), "--fail-on", "gaps", "--baseline", str(baseline))
    assert accepted.returncode == 0, accepted.stderr
    assert "Accepted by the baseline: 18" in accepted.stdout


def test_baseline_survives_moved_lines_but_not_new_gaps(tmp_path: Path) -> None:
    source = (FIXTURE / "app" / "db" / "users.py").read_text()
    work = tmp_path / "app" / "db"
    work.mkdir(parents=True)
    (work / "users.py").write_text(source)
    baseline = tmp_path / "baseline.json"
    assert audit("app", "--write-baseline", str(baseline), cwd=tmp_path).returncode == 0
    moved = '"""Moved down by a new docstring line."""\n\n' + source
    (work / "users.py").write_text(moved)
    assert audit("app", "--fail-on", "gaps", "--baseline", str(baseline), cwd=tmp_path).returncode == 0
    new_gap = moved + textwrap.dedent(
        """

        def fetch_rows(session):
            try:
                return session.all()
            except Exception:
                return []
        """
    )
    (work / "users.py").write_text(new_gap)
    result = audit("app", "--fail-on", "gaps", "--baseline", str(baseline), cwd=tmp_path)
    assert result.returncode == 1 and "error-to-default" in result.stdout


def test_changed_files_only_as_pre_commit_passes_them() -> None:
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert re.search(r"^- id: otel-sentry-audit$", hooks, re.M)
    assert re.search(r"^  entry: otel-sentry audit$", hooks, re.M)
    assert re.search(r"^  types: \[python\]$", hooks, re.M)
    args = re.search(r"^  args: \[(.*)\]$", hooks, re.M)
    assert args is not None
    hook_args = [a.strip() for a in args.group(1).split(",")]
    # pre-commit runs the entry with the hook's args and then the changed files, from the repo root
    result = audit(*hook_args, "app/tasks/usage.py", "app/routes/chat.py", cwd=FIXTURE)
    assert result.returncode == 1
    assert f"app/tasks/usage.py:{USAGE_SWALLOW}: swallowed-exception [background]" in result.stdout
    assert "app/db/users.py" not in result.stdout
    clean = audit(*hook_args, "app/utils.py", cwd=FIXTURE)
    assert clean.returncode == 0, clean.stdout


def test_layers_are_configurable() -> None:
    result = audit(str(FIXTURE), "--format", "json", "--layer", "api=*/routes/*", "--layer", "data=*/db/*")
    names = [row["name"] for row in json.loads(result.stdout)["layers"]]
    assert names == ["api", "data", "other", "overall"]
    assert audit(str(FIXTURE), "--layer", "nonsense").returncode == 2


def test_a_file_that_does_not_parse_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "fine.py").write_text("try:\n    x()\nexcept Exception:\n    pass\n")
    result = audit(str(tmp_path), "--format", "json")
    data = json.loads(result.stdout)
    assert "broken.py" in data["errors"] and [f["kind"] for f in data["findings"]] == ["swallowed-exception"]


# -- the rules on generated except blocks -------------------------------------------------------------

_BODIES = {
    "raise": (None, "raise"),
    "raise_from": (None, "raise RuntimeError('x') from exc"),
    "log_exception": (None, "logger.exception('failed')"),
    "log_exc_info": (None, "logger.error('failed', exc_info=True)"),
    "loguru_opt": (None, "logger.opt(exception=exc).error('failed')"),
    "capture": (None, "capture_error(exc)"),
    "pass": ("swallowed-exception", "pass"),
    "log_warning": ("swallowed-exception", "logger.warning('failed: %s', exc)"),
    "log_error_no_exc_info": ("error-to-default", "logger.error(f'failed {exc}')\nreturn None"),
    "return_none": ("error-to-default", "return None"),
    "return_empty": ("error-to-default", "return {}"),
    "http_500_no_from": ("http-exception-without-from", "raise HTTPException(status_code=500)"),
    "http_500_from_none": ("http-exception-without-from", "raise HTTPException(502, 'x') from None"),
    "http_500_from": (None, "raise HTTPException(500) from exc"),
    "http_4xx": ("error-to-4xx", "raise HTTPException(status_code=409) from exc"),
    "response_503": ("5xx-response-in-except", "return JSONResponse({'e': 1}, status_code=503)"),
    "response_400": ("error-to-4xx", "return PlainTextResponse('bad', 400)"),
}
_CAUGHT = {
    "Exception": True,
    "BaseException": True,
    "": True,
    "httpx.HTTPError": True,
    "(OSError, ValueError)": True,
    "ValueError": False,
    "KeyError": False,
    "UserNotFoundError": False,
    "asyncio.CancelledError": False,
}


def check_except_block(body: str, caught: str, depth: int, in_class: bool) -> None:
    kind, code = _BODIES[body]
    clause = f"except {caught} as exc:" if caught else "except:"
    handler = textwrap.indent(code, "    ")
    inner = f"try:\n    work()\n{clause}\n{handler}\n"
    for level in range(depth):
        inner = ("for item in items:\n" if level % 2 == 0 else "if ready:\n") + textwrap.indent(inner, "    ")
    func = "def fetch(items, ready):\n" + textwrap.indent(inner, "    ")
    source = f"class Repo:\n{textwrap.indent(func, '    ')}" if in_class else func
    result = scan_source(source, "pkg/mod.py")
    kinds = [f.kind for f in result.findings]
    if not _CAUGHT[caught]:
        assert kinds == [] and result.error_paths == 0, source
    else:
        assert kinds == ([kind] if kind else []), source
        assert result.error_paths == 1
        assert result.reaching == int(kind is None or KINDS[kind].reaches_sentry)


def test_generated_except_blocks() -> None:
    """Every body under every caught type, nested in loops/ifs to depth 2, in a function or a method
    (918 generated files)."""
    cases = itertools.product(sorted(_BODIES), sorted(_CAUGHT), range(3), (False, True))
    for body, caught, depth, in_class in cases:
        check_except_block(body, caught, depth, in_class)
