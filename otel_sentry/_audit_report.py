"""``otel-sentry audit PATH...``: files to scan, layers, the coverage table, output formats, CI gates.

Coverage is the share of error paths found that reach Sentry (re-raised, captured, logged with their
traceback, or caught by otel_sentry automatically). The table has the seeds' coverage report's shape:
one row per layer (routes, services, db, background, from folder patterns), one for everything.
A baseline file accepts known findings by fingerprint (path, kind, function and the flagged line's
text, so unrelated edits that move lines keep them accepted); ``--fail-on`` and ``--min-coverage``
turn the result into an exit status for CI and pre-commit.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, TextIO

from ._audit import FileResult, Finding, exception_classes
from ._audit_kinds import KINDS
from ._audit_scan import parse, scan_tree

DEFAULT_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "routes",
        (
            "*/routes/*",
            "*/routers/*",
            "*/api/*",
            "*/endpoints/*",
            "*_endpoints/*",
            "*_routes/*",
            "*/routes.py",
            "*/views*",
            "*/controllers/*",
        ),
    ),
    (
        "db",
        (
            "*/db/*",
            "*/db.py",
            "*/database/*",
            "*/crud/*",
            "*/crud.py",
            "*/repositories/*",
            "*/repository/*",
            "*/dao/*",
        ),
    ),
    (
        "background",
        (
            "*/tasks/*",
            "*/tasks.py",
            "*/workers/*",
            "*/worker.py",
            "*/jobs/*",
            "*/cron*",
            "*/scheduler*",
            "*/background*",
        ),
    ),
    (
        "services",
        ("*/services/*", "*/service/*", "*/clients/*", "*/*_client.py", "*/providers/*", "*/integrations/*"),
    ),
)
EXCLUDED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        "env",
        ".env",
        "node_modules",
        "__pycache__",
        "site-packages",
        "build",
        "dist",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "migrations",
        "alembic",
        "tests",
        "test",
        "testing",
    }
)
TEST_FILES = ("test_*.py", "*_test.py", "conftest.py", "migrations.py", "*_migrations.py")


@dataclass
class LayerRow:
    name: str
    files: int = 0
    error_paths: int = 0
    reaching: int = 0
    automatic: int = 0
    gaps: int = 0
    candidates: int = 0

    @property
    def coverage(self) -> Optional[float]:
        return 100.0 * self.reaching / self.error_paths if self.error_paths else None


@dataclass
class AuditResult:
    files: list[FileResult] = field(default_factory=list)
    rows: list[LayerRow] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.files for f in r.findings]

    @property
    def total(self) -> LayerRow:
        return self.rows[-1]


def parse_layers(specs: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``--layer name=glob,glob`` flags (in order, first match wins); none: the defaults."""
    layers = []
    for spec in specs:
        name, sep, globs = spec.partition("=")
        patterns = tuple(g.strip() for g in globs.split(",") if g.strip())
        if not sep or not name.strip() or not patterns:
            raise ValueError(f"--layer {spec!r}: expected NAME=GLOB[,GLOB...], e.g. routes=*/routes/*")
        layers.append((name.strip(), patterns))
    return tuple(layers) or DEFAULT_LAYERS


def layer_of(path: str, layers: Sequence[tuple[str, Sequence[str]]]) -> str:
    probe = "/" + path.replace("\\", "/").lstrip("/")
    for name, patterns in layers:
        if any(fnmatch.fnmatchcase(probe, p) for p in patterns):
            return name
    return "other"


def discover(
    paths: Sequence[str], excludes: Sequence[str] = (), include_tests: bool = False
) -> list[tuple[Path, str]]:
    """(file, path shown and matched against layers): a directory's files relative to it, a file
    argument as given (pre-commit passes paths relative to the repository root)."""
    found: dict[str, tuple[Path, str]] = {}

    def excluded(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in excludes) or (
            not include_tests and any(fnmatch.fnmatchcase(name, p) for p in TEST_FILES)
        )

    for given in paths:
        root = Path(given)
        if root.is_file():
            rel = given.replace("\\", "/").removeprefix("./")
            if rel.endswith(".py") and not excluded(rel):
                found.setdefault(str(root.resolve()), (root, rel))
            continue
        if not root.is_dir():
            raise FileNotFoundError(f"no such file or directory: {given}")
        skip = EXCLUDED_DIRS - ({"tests", "test", "testing"} if include_tests else set())
        for directory, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.endswith(".egg-info"))
            for name in sorted(filenames):
                full = Path(directory) / name
                rel = full.relative_to(root).as_posix()
                if name.endswith(".py") and not excluded(rel):
                    found.setdefault(str(full.resolve()), (full, rel))
    return list(found.values())


def run_audit(
    paths: Sequence[str],
    layers: Sequence[tuple[str, Sequence[str]]] = DEFAULT_LAYERS,
    excludes: Sequence[str] = (),
    include_tests: bool = False,
    baseline: Optional[set[str]] = None,
) -> AuditResult:
    started = time.perf_counter()
    result = AuditResult()
    names = [name for name, _ in layers] + ["other"]
    rows = {name: LayerRow(name) for name in names}
    parsed = []
    local: set[str] = set()
    for full, rel in discover(paths, excludes, include_tests):
        try:
            source = full.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            result.files.append(FileResult(rel, error=f"cannot read: {exc}"))
            continue
        tree, error = parse(source, rel)
        if tree is None:
            result.files.append(FileResult(rel, error=error))
            continue
        local.update(exception_classes(tree))
        parsed.append((tree, source, rel))
    local_exceptions = frozenset(local)
    for tree, source, rel in parsed:
        scanned = scan_tree(tree, source, rel, local_exceptions)
        layer = layer_of(rel, layers)
        row = rows[layer]
        row.files += 1
        row.error_paths += scanned.error_paths
        row.reaching += scanned.reaching
        for finding in scanned.findings:
            finding.layer = layer
            finding.baselined = baseline is not None and finding.fingerprint in baseline
            spec = KINDS[finding.kind]
            if not spec.error_path:
                row.candidates += 1
            elif spec.reaches_sentry:
                row.automatic += 1
            else:
                row.gaps += 1
        result.files.append(scanned)
    total = LayerRow("overall")
    for row in rows.values():
        for attr in ("files", "error_paths", "reaching", "automatic", "gaps", "candidates"):
            setattr(total, attr, getattr(total, attr) + getattr(row, attr))
    result.rows = [rows[n] for n in names if rows[n].files] + [total]
    result.seconds = time.perf_counter() - started
    return result


# -- baseline ----------------------------------------------------------------------------------


def read_baseline(path: Path) -> set[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = data.get("findings", []) if isinstance(data, dict) else []
    return {str(e["fingerprint"]) for e in entries if isinstance(e, dict) and "fingerprint" in e}


def write_baseline(path: Path, result: AuditResult) -> int:
    entries = [
        {"fingerprint": f.fingerprint, "path": f.path, "kind": f.kind, "function": f.function, "line": f.line}
        for f in result.findings
        if KINDS[f.kind].error_path
    ]
    path.write_text(json.dumps({"version": 1, "findings": entries}, indent=2) + "\n", encoding="utf-8")
    return len(entries)


# -- output ------------------------------------------------------------------------------------


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.0f}%"


def coverage_table(result: AuditResult, markdown: bool) -> list[str]:
    header = [
        "Layer",
        "Files",
        "Error paths",
        "Reach Sentry",
        "of which automatic",
        "Gaps",
        "Coverage",
        "Undecorated",
    ]
    body = [
        [
            r.name.capitalize() if r.name != "overall" else "OVERALL",
            str(r.files),
            str(r.error_paths),
            str(r.reaching),
            str(r.automatic),
            str(r.gaps),
            _pct(r.coverage),
            str(r.candidates),
        ]
        for r in result.rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for cells in body:
            if cells[0] == "OVERALL":
                cells = [f"**{c}**" for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        return lines
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        for cells in [header, *body]
    ]


def _why(finding: Finding) -> str:
    return finding.spec.why


def _fix(finding: Finding) -> str:
    return finding.spec.fix.format(context=finding.context_type or "")


def render_text(result: AuditResult, out: TextIO, show_candidates: bool) -> None:
    findings = result.findings
    gaps = [f for f in findings if f.spec.error_path and not f.reaches_sentry and not f.baselined]
    automatic = [f for f in findings if f.spec.error_path and f.reaches_sentry and not f.baselined]
    candidates = [f for f in findings if not f.spec.error_path]
    if gaps:
        out.write(f"Gaps: {len(gaps)} error path(s) that do not reach Sentry\n\n")
    for f in gaps:
        out.write(f"{f.path}:{f.line}: {f.kind} [{f.layer}] in {f.function}: {f.detail}\n")
        out.write(f"    why: {_why(f)}\n    fix: {_fix(f)}\n")
    if automatic:
        out.write(f"\nCaught automatically by otel_sentry: {len(automatic)} (nothing to do)\n")
        for f in automatic:
            out.write(f"{f.path}:{f.line}: {f.kind} [{f.layer}]: {f.detail}\n")
        out.write("    (each kind: " + "; ".join(sorted({f"{f.kind}: {_fix(f)}" for f in automatic})) + ")\n")
    if candidates:
        out.write(f"\nCould use @auto_capture_errors (optional, more context): {len(candidates)}\n")
        for f in candidates if show_candidates else []:
            out.write(f"{f.path}:{f.line}: {f.function}: {f.detail}\n")
        if not show_candidates:
            out.write("    (list them with --all)\n")
    baselined = sum(1 for f in findings if f.baselined)
    if baselined:
        out.write(f"\nAccepted by the baseline: {baselined}\n")
    for r in result.files:
        if r.error:
            out.write(f"{r.path}: skipped: {r.error}\n")
    out.write("\nError capture coverage by layer\n\n")
    out.write("\n".join(coverage_table(result, markdown=False)) + "\n")
    out.write(f"\n{result.total.files} files in {result.seconds:.2f} s\n")


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "path": f.path,
        "line": f.line,
        "kind": f.kind,
        "layer": f.layer,
        "function": f.function,
        "detail": f.detail,
        "reaches_sentry": f.reaches_sentry,
        "error_path": f.spec.error_path,
        "why": _why(f),
        "fix": _fix(f),
        "fingerprint": f.fingerprint,
        "baselined": f.baselined,
    }


def render_json(result: AuditResult, out: TextIO) -> None:
    data = {
        "version": 1,
        "seconds": round(result.seconds, 3),
        "findings": [_finding_dict(f) for f in result.findings],
        "layers": [
            {
                **{
                    k: getattr(r, k)
                    for k in ("name", "files", "error_paths", "reaching", "automatic", "gaps", "candidates")
                },
                "coverage": None if r.coverage is None else round(r.coverage, 1),
            }
            for r in result.rows
        ],
        "errors": {r.path: r.error for r in result.files if r.error},
    }
    json.dump(data, out, indent=2)
    out.write("\n")


def render_markdown(result: AuditResult, out: TextIO) -> None:
    out.write("## Sentry coverage (otel-sentry audit)\n\n")
    out.write("\n".join(coverage_table(result, markdown=True)) + "\n\n")
    shown = [f for f in result.findings if f.spec.error_path and not f.baselined]
    if shown:
        out.write("| File | Line | Kind | Reaches Sentry | Detail | Fix |\n|---|---|---|---|---|---|\n")
        for f in shown:
            reaches = "yes (automatic)" if f.reaches_sentry else "**no**"
            cells = [f"`{f.path}`", str(f.line), f.kind, reaches, f.detail, _fix(f)]
            out.write("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |\n")


def _escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def render_github(result: AuditResult, out: TextIO) -> None:
    """Workflow commands: an annotation per finding on the changed lines; the table in the summary."""
    for f in result.findings:
        if not f.spec.error_path or f.baselined:
            continue
        level = "notice" if f.reaches_sentry else "warning"
        title = _escape(f"otel-sentry: {f.kind}", prop=True)
        message = _escape(f"{f.detail}. {_why(f)}. Fix: {_fix(f)}")
        out.write(f"::{level} file={_escape(f.path, True)},line={f.line},title={title}::{message}\n")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            render_markdown(result, handle)
    out.write("\n".join(coverage_table(result, markdown=False)) + "\n")


def render(result: AuditResult, fmt: str, out: TextIO = sys.stdout, show_candidates: bool = False) -> None:
    if fmt == "json":
        render_json(result, out)
    elif fmt == "markdown":
        render_markdown(result, out)
    elif fmt == "github":
        render_github(result, out)
    else:
        render_text(result, out, show_candidates)


# -- CI gates ----------------------------------------------------------------------------------


def parse_fail_on(values: Sequence[str]) -> set[str]:
    kinds: set[str] = set()
    for value in values:
        for kind in (v.strip() for v in value.split(",") if v.strip()):
            if kind == "gaps":
                kinds.update(k for k, spec in KINDS.items() if spec.error_path and not spec.reaches_sentry)
            elif kind == "any":
                kinds.update(KINDS)
            elif kind in KINDS:
                kinds.add(kind)
            else:
                raise ValueError(f"--fail-on {kind!r}: expected gaps, any, or one of {', '.join(KINDS)}")
    return kinds


def gate(result: AuditResult, fail_on: set[str], min_coverage: Optional[float]) -> list[str]:
    """Why the audit fails (empty: it passes)."""
    reasons = []
    hits = [f for f in result.findings if f.kind in fail_on and not f.baselined]
    if hits:
        kinds = sorted({f.kind for f in hits})
        reasons.append(
            f"{len(hits)} finding(s) of --fail-on kind(s) {', '.join(kinds)} (not in the baseline)"
        )
    coverage = result.total.coverage
    if min_coverage is not None and coverage is not None and coverage + 1e-9 < min_coverage:
        reasons.append(f"coverage {coverage:.1f}% is below --min-coverage {min_coverage:g}%")
    return reasons
