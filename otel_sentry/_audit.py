"""``otel-sentry audit``: where an error would not become an issue, found with ``ast`` alone.

The app is never imported (importing runs its code and needs its dependencies); each file is parsed
and walked once. An *error path* is a place where an exception leaves the normal flow: an ``except``
that catches a failure (a broad type, or one not in :data:`EXPECTED` - the exceptions code raises on
purpose for control flow), ``contextlib.suppress`` of one, or background work started
(``BackgroundTasks.add_task``, ``asyncio.create_task``, threads, executors) whose result nobody
retrieves. Each path either reaches Sentry (re-raised, captured, logged with its traceback, or caught
by otel_sentry automatically) or is a gap. The kinds, why each matters and each fix are data in
:data:`KINDS`; the report (``_audit_report``) turns findings into tables and CI results.
"""

from __future__ import annotations

import ast
import http
import re
from dataclasses import dataclass, field
from typing import Optional, Union

from ._audit_kinds import (
    BROAD,
    CAPTURE_CALLS,
    EXPECTED,
    EXPECTED_NAME,
    INFRASTRUCTURE_NAME,
    KINDS,
    Kind,
)
from ._decorator import detect_context_type

_DEFAULT_VALUES = (type(None), bool, int, float, str, bytes)
_LOG_ERROR = frozenset({"error", "critical", "fatal"})
_LOGGER_NAMES = frozenset({"log", "logging", "structlog", "logfire", "loguru", "_log", "opt"})
_TASK_SPAWN = frozenset({"create_task", "ensure_future"})
_RETRIEVE_METHODS = frozenset({"result", "exception", "add_done_callback", "cancel"})
_RETRIEVE_CALLS = frozenset({"gather", "wait", "wait_for", "as_completed", "shield", "run_until_complete"})
_PRAGMA = re.compile(r"#\s*otel-sentry:\s*ignore(?:\[([a-z0-9,\s-]+)\])?")


@dataclass
class Finding:
    """One place in the code, as the report prints it."""

    path: str
    line: int
    kind: str
    function: str
    detail: str
    snippet: str
    context_type: Optional[str] = None
    layer: str = "other"
    fingerprint: str = ""
    baselined: bool = False

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]

    @property
    def reaches_sentry(self) -> bool:
        return self.spec.reaches_sentry


@dataclass
class FileResult:
    """What one file holds: its findings and how many error paths reach Sentry without one."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    error_paths: int = 0
    reaching: int = 0  # error paths that reach Sentry, findings of reaching kinds included
    error: Optional[str] = None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _leaf(node: ast.AST) -> str:
    return _dotted(node).rsplit(".", 1)[-1]


def caught_types(handler: ast.ExceptHandler) -> list[str]:
    if handler.type is None:
        return ["BaseException"]
    nodes = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return [_dotted(n) or "?" for n in nodes]


def is_expected(name: str, local_exceptions: frozenset[str] = frozenset()) -> bool:
    """An exception raised on purpose: a built-in for control flow or input checks, one whose name
    announces an expected outcome, or one the scanned code defines itself (unless its name says a
    dependency failed)."""
    leaf = name.rsplit(".", 1)[-1]
    if name in EXPECTED or leaf in EXPECTED or EXPECTED_NAME.search(leaf):
        return True
    return leaf in local_exceptions and not INFRASTRUCTURE_NAME.search(leaf)


def is_error_path(types: list[str], local_exceptions: frozenset[str] = frozenset()) -> bool:
    """A broad catch, or one of a failure not raised on purpose (a library's connection error...)."""
    return any(t in BROAD or not is_expected(t, local_exceptions) for t in types)


def _walk_body(nodes: list[ast.stmt]) -> list[ast.AST]:
    """Every node of these statements, not entering nested functions, lambdas or classes."""
    found: list[ast.AST] = []
    pending: list[ast.AST] = list(reversed(nodes))
    while pending:
        node = pending.pop()
        found.append(node)
        for child in reversed(list(ast.iter_child_nodes(node))):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                pending.append(child)
    return found


def status_of(node: Optional[ast.AST]) -> Optional[int]:
    """A literal status: 500, status.HTTP_502_BAD_GATEWAY, HTTPStatus.INTERNAL_SERVER_ERROR."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    name = _leaf(node) if node is not None else ""
    match = re.match(r"HTTP_(\d{3})(_|$)", name)
    if match:
        return int(match.group(1))
    if isinstance(node, ast.Attribute) and _leaf(node.value) == "HTTPStatus":
        member = http.HTTPStatus.__members__.get(node.attr)
        return int(member) if member is not None else None
    return None


def _call_status(call: ast.Call) -> Optional[int]:
    """The status_code of an HTTPException(...) / SomeResponse(...) call, when it is a literal."""
    for keyword in call.keywords:
        if keyword.arg in ("status_code", "status"):
            return status_of(keyword.value)
    name = _leaf(call.func)
    position = 0 if name.endswith("HTTPException") else 1
    return status_of(call.args[position]) if len(call.args) > position else None


def _is_logger(receiver: str) -> bool:
    """``logger``, ``log``, ``self._logger``, ``verbose_proxy_logger``, ``logging``, loguru, structlog."""
    leaf = receiver.rsplit(".", 1)[-1].lower()
    return leaf.endswith("logger") or leaf.endswith("_log") or leaf in _LOGGER_NAMES


def _truthy(node: ast.AST) -> bool:
    return not (isinstance(node, ast.Constant) and not node.value)


def reports_exception(call: ast.Call) -> bool:
    """A capture helper, logger.exception, or an ERROR+ log call with exc_info."""
    name = _leaf(call.func)
    if name in CAPTURE_CALLS:
        return True
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    if isinstance(receiver, ast.Call) and _leaf(receiver.func) == "opt":  # loguru: logger.opt(exception=e)
        return any(k.arg == "exception" and _truthy(k.value) for k in receiver.keywords)
    if not isinstance(call.func, ast.Attribute) or not _is_logger(_dotted(call.func.value)):
        return False
    if name == "exception":
        return True
    exc_info = any(k.arg in ("exc_info", "stack_info") and _truthy(k.value) for k in call.keywords)
    if name in _LOG_ERROR or name == "log":
        return exc_info
    return False


def _is_default(node: Optional[ast.expr]) -> bool:
    if node is None or (isinstance(node, ast.Constant) and isinstance(node.value, _DEFAULT_VALUES)):
        return True
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and not node.elts:
        return True
    if isinstance(node, ast.Dict) and not node.keys:
        return True
    return (
        isinstance(node, ast.Call) and _leaf(node.func) in ("list", "dict", "set", "tuple") and not node.args
    )


@dataclass
class HandlerOutcome:
    """What an except block does with the exception it caught."""

    kind: Optional[str]  # a finding's kind, or None: it reaches Sentry and needs no finding
    reaches: bool
    detail: str
    line: int


def _response_status(node: ast.AST) -> Optional[int]:
    if isinstance(node, ast.Call) and _leaf(node.func).endswith("Response"):
        return _call_status(node)
    return None


_CLEANUP = re.compile(
    r"^(a?close|cleanup|clean_up|shutdown|stop|disconnect|teardown|dispose|terminate|__del__|__exit__|__aexit__)$"
    r"|_(a?close|cleanup|shutdown|disconnect|stop|teardown)$"
)
_PARSER = re.compile(
    r"decode|parse|validate|loads|fromisoformat|strptime|literal_eval|unquote|^int$|^float$|^Decimal$"
)


def is_cleanup(function_name: str, try_body: list[ast.stmt]) -> bool:
    """Releasing resources (a close/cleanup/shutdown function, or a try that only closes): failing
    there is routinely ignored and changes nothing for the request."""
    if _CLEANUP.search(function_name):
        return True
    calls = [n for n in _walk_body(try_body) if isinstance(n, ast.Call)]
    return bool(calls) and all(_CLEANUP.search(_leaf(c.func)) or _leaf(c.func) == "cancel" for c in calls)


def is_parse_probe(try_body: list[ast.stmt]) -> bool:
    """A try around one parse of input (``decode(...)``, ``json.loads``, ``int(...)``): the failure is
    the expected answer 'not valid', not an error."""
    if len(try_body) != 1 or not isinstance(try_body[0], (ast.Assign, ast.AnnAssign, ast.Expr, ast.Return)):
        return False
    value = try_body[0].value
    while isinstance(value, (ast.Subscript, ast.Attribute)):
        value = value.value
    return isinstance(value, ast.Call) and bool(_PARSER.search(_leaf(value.func)))


def only_logs_or_asserts(try_body: list[ast.stmt]) -> bool:
    """A try around nothing but logging/printing (a failure of the logging itself) or asserts."""
    if all(isinstance(s, ast.Assert) for s in try_body):
        return True
    calls = [n for n in _walk_body(try_body) if isinstance(n, ast.Call)]
    return bool(calls) and all(
        _leaf(c.func) == "print" or (isinstance(c.func, ast.Attribute) and _is_logger(_dotted(c.func.value)))
        for c in calls
    )


def returns_the_exception(handler: ast.ExceptHandler) -> bool:
    """``return e`` (or a tuple holding it): the exception is handed to the caller as a value, who
    decides what it means; nothing is swallowed here."""
    if handler.name is None:
        return False
    for node in _walk_body(handler.body):
        if isinstance(node, ast.Return) and node.value is not None:
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            if any(isinstance(v, ast.Name) and v.id == handler.name for v in values):
                return True
    return False


def reports_on_console(handler: ast.ExceptHandler) -> bool:
    """A command-line tool telling its user (click/typer echo): not a server's error path."""
    return any(
        isinstance(n, ast.Call)
        and _leaf(n.func) in ("echo", "secho")
        and _dotted(n.func).split(".")[0] in ("click", "typer")
        for n in _walk_body(handler.body)
    )


def is_poll_timeout(handler: ast.ExceptHandler, types: list[str]) -> bool:
    """``except asyncio.TimeoutError: pass`` (or continue) around a wait: a timeout used as a poll."""
    only_timeouts = all("Timeout" in t.rsplit(".", 1)[-1] for t in types)
    return only_timeouts and all(isinstance(s, (ast.Pass, ast.Continue)) for s in handler.body)


def handler_outcome(handler: ast.ExceptHandler, broad: bool) -> HandlerOutcome:
    """Classify one except block (see the module docstring)."""
    nodes = _walk_body(handler.body)
    caught = handler.name
    for node in nodes:
        if isinstance(node, ast.Raise):
            outcome = _raise_outcome(node, caught, broad)
            if outcome is not None:
                return outcome
    if any(isinstance(node, ast.Raise) for node in nodes):
        return HandlerOutcome(None, True, "re-raised", handler.lineno)
    if any(isinstance(node, ast.Call) and reports_exception(node) for node in nodes):
        return HandlerOutcome(None, True, "reported", handler.lineno)
    for node in nodes:
        status = _response_status(node) if isinstance(node, ast.Call) else None
        if status is not None and status >= 500:
            line = getattr(node, "lineno", handler.lineno)
            return HandlerOutcome("5xx-response-in-except", True, f"builds a {status} response", line)
        if status is not None and 400 <= status < 500 and broad:
            return HandlerOutcome(
                "error-to-4xx", False, f"answers {status}", getattr(node, "lineno", handler.lineno)
            )
    if any(isinstance(n, ast.Call) and _leaf(n.func) in ("exit", "_exit", "abort") for n in nodes):
        return HandlerOutcome(None, True, "exits the process", handler.lineno)
    return _swallow_outcome(handler, nodes)


def _raise_outcome(node: ast.Raise, caught: Optional[str], broad: bool) -> Optional[HandlerOutcome]:
    if not isinstance(node.exc, ast.Call) or not _leaf(node.exc.func).endswith("HTTPException"):
        return None
    status = _call_status(node.exc)
    if status is not None and status < 500:
        if broad:
            return HandlerOutcome("error-to-4xx", False, f"raises HTTPException({status})", node.lineno)
        return None  # a client error from an expected exception
    cause = node.cause
    if cause is not None and not (isinstance(cause, ast.Constant) and cause.value is None):
        return None
    shown = status if status is not None else "status"
    how = "from None" if cause is not None else f"without `from {caught or 'e'}`"
    return HandlerOutcome(
        "http-exception-without-from", True, f"raises HTTPException({shown}) {how}", node.lineno
    )


def _swallow_outcome(handler: ast.ExceptHandler, nodes: list[ast.AST]) -> HandlerOutcome:
    logged = [
        n
        for n in nodes
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and _is_logger(_dotted(n.func.value))
        and n.func.attr in (*_LOG_ERROR, "warning", "warn", "info", "debug")
    ]
    note = f"; logged with logger.{logged[0].func.attr}() without exc_info" if logged else ""  # type: ignore[attr-defined]
    for node in nodes:
        if isinstance(node, ast.Return) and _is_default(node.value):
            shown = ast.unparse(node.value) if node.value is not None else "None"
            return HandlerOutcome("error-to-default", False, f"returns {shown}{note}", node.lineno)
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _is_default(node.value):
            return HandlerOutcome("error-to-default", False, "assigns a default" + note, node.lineno)
    last = handler.body[-1]
    if isinstance(last, ast.Continue):
        what = "skips to the next item"
    elif isinstance(last, ast.Pass) or (isinstance(last, ast.Expr) and isinstance(last.value, ast.Constant)):
        what = "does nothing"
    elif isinstance(last, ast.Return):
        what = "returns a value"
    else:
        what = "carries on"
    return HandlerOutcome("swallowed-exception", False, what + note, handler.lineno)


Scope = Union[ast.FunctionDef, ast.AsyncFunctionDef]


def retrieved_names(tree: ast.AST) -> set[str]:
    """Names (last component) of whatever is awaited, gathered, waited for or read in this file."""
    names: set[str] = set()
    for node in ast.walk(tree):
        note_retrieval(node, names)
    return names


def note_retrieval(node: ast.AST, names: set[str]) -> None:
    """Add to names what this one node awaits, gathers, waits for or reads (see retrieved_names)."""

    def add(node: ast.AST) -> None:
        if isinstance(node, ast.Starred):
            node = node.value
        if isinstance(node, ast.Subscript):
            node = node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            for element in node.elts:
                add(element)
            return
        leaf = _leaf(node)
        if leaf:
            names.add(leaf)

    if isinstance(node, ast.Await):
        add(node.value)
    elif isinstance(node, ast.Call):
        leaf = _leaf(node.func)
        if leaf in _RETRIEVE_CALLS:
            for arg in node.args:
                add(arg)
        elif leaf in _RETRIEVE_METHODS and isinstance(node.func, ast.Attribute):
            add(node.func.value)
    elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
        add(node.iter)  # `for t in tasks: await t` / `[await t for t in tasks]`


def exception_classes(tree: ast.Module) -> set[str]:
    """Classes a file defines that look like exceptions (a base named *Error/*Exception/...), at module
    level or nested in classes (where exception classes live)."""
    found = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.ClassDef):
            pending.extend(node.body)
        if isinstance(node, ast.ClassDef) and any(
            re.search(r"(Error|Exception|Exc|Failure|Warning)$", _leaf(base)) for base in node.bases
        ):
            found.add(node.name)
    return found


def imports_something(body: list[ast.stmt]) -> bool:
    """A try block that imports (or import_module()s): failing there is the expected, probed case."""
    return any(
        isinstance(n, (ast.Import, ast.ImportFrom))
        or (isinstance(n, ast.Call) and _leaf(n.func) == "import_module")
        for n in _walk_body(body)
    )


def undecorated_candidate(func: Scope, module: str) -> Optional[str]:
    """The context type @auto_capture_errors would detect, for a public undecorated function."""
    if (
        func.name.startswith("_")
        or func.name in CAPTURE_CALLS
        or any(_leaf(d) in ("property", "setter") for d in func.decorator_list)
    ):
        return None
    if any(_leaf(d) == "auto_capture_errors" for d in func.decorator_list):
        return None
    kind = detect_context_type(func.name, module)
    if kind == "general":
        return None
    if any(isinstance(n, ast.Call) and _leaf(n.func) in CAPTURE_CALLS for n in _walk_body(func.body)):
        return None
    return kind


def pragma_kinds(line: str) -> Optional[set[str]]:
    """``# otel-sentry: ignore`` (every kind: empty set) or ``ignore[kind,...]`` on a line; else None."""
    match = _PRAGMA.search(line)
    if match is None:
        return None
    return {k.strip() for k in (match.group(1) or "").split(",") if k.strip()}
