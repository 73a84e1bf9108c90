"""One walk of one file's syntax tree: its error paths and findings (rules in ``_audit``)."""

from __future__ import annotations

import ast
import hashlib
from typing import Any, Optional

from . import _audit as rules
from ._audit import FileResult, Finding, HandlerOutcome

_TASK_GROUPS = frozenset({"TaskGroup", "create_task_group"})
_THREAD_EXECUTORS = frozenset({"ThreadPoolExecutor"})
_PROCESS_EXECUTORS = frozenset({"ProcessPoolExecutor"})
_CONTAINER_ADD = frozenset({"append", "add", "appendleft", "put", "put_nowait", "extend"})


def module_name(relative_path: str) -> str:
    """``src/db/users.py`` -> ``src.db.users`` (what @auto_capture_errors' detection rules read)."""
    parts = relative_path.replace("\\", "/").split("/")
    parts[-1] = parts[-1][:-3] if parts[-1].endswith(".py") else parts[-1]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(p for p in parts if p)


class _Scanner(ast.NodeVisitor):
    def __init__(
        self, result: FileResult, source_lines: list[str], module: str, tree: ast.AST, local: frozenset[str]
    ) -> None:
        self.result = result
        self.local = local
        self.lines = source_lines
        self.module = module
        self.scope: list[str] = []
        self.depth = 0  # nesting of functions
        self.parents: dict[int, ast.AST] = {}
        self.retrieved: set[str] = set()
        # Thread/Timer imported from threading (not, say, OpenAI's Thread type); create_task or
        # ensure_future imported from asyncio (another create_task, such as an app's own task manager,
        # may well retrieve what it runs)
        self.thread_classes: set[str] = set()
        self.asyncio_spawns: set[str] = set()
        self._index(tree)
        self.task_groups: set[str] = set()
        self.executors: dict[str, str] = {}  # bound name -> "thread" | "process"
        self._seen: dict[str, int] = {}

    def _index(self, tree: ast.AST) -> None:
        """One pass over the tree: parents, what is retrieved, what is imported from where."""
        pending = [tree]
        while pending:
            node = pending.pop()
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
                pending.append(child)
            rules.note_retrieval(node, self.retrieved)
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                for alias in node.names:
                    if module == "threading" and alias.name in ("Thread", "Timer"):
                        self.thread_classes.add(alias.asname or alias.name)
                    elif module.split(".")[0] == "asyncio" and alias.name in rules._TASK_SPAWN:
                        self.asyncio_spawns.add(alias.asname or alias.name)

    # -- bookkeeping ---------------------------------------------------------------------------
    def _line(self, lineno: int) -> str:
        return self.lines[lineno - 1].strip() if 0 < lineno <= len(self.lines) else ""

    def _ignored(self, kind: str, *linenos: int) -> bool:
        for lineno in linenos:
            kinds = rules.pragma_kinds(self._line(lineno))
            if kinds is not None and (not kinds or kind in kinds):
                return True
        return False

    def _add(
        self, kind: str, lineno: int, detail: str, *, also: int = 0, context: Optional[str] = None
    ) -> bool:
        """Record a finding; False when a pragma on its line (or ``also``) says to ignore it."""
        if self._ignored(kind, lineno, also or lineno):
            return False
        function = ".".join(self.scope) or "<module>"
        snippet = self._line(lineno)
        key = f"{self.result.path}|{kind}|{function}|{' '.join(snippet.split())}"
        self._seen[key] = self._seen.get(key, 0) + 1
        digest = hashlib.sha256(f"{key}|{self._seen[key]}".encode()).hexdigest()[:16]
        self.result.findings.append(
            Finding(self.result.path, lineno, kind, function, detail, snippet, context, fingerprint=digest)
        )
        return True

    def _path(self, kind: Optional[str], reaches: bool, lineno: int, detail: str, also: int = 0) -> None:
        """One error path: counted, and a finding when it has a kind."""
        if kind is not None and not self._add(kind, lineno, detail, also=also):
            return
        self.result.error_paths += 1
        self.result.reaching += int(reaches)

    # -- scopes --------------------------------------------------------------------------------
    def _function(self, node: rules.Scope) -> None:
        if self.depth == 0:
            context = rules.undecorated_candidate(node, self.module)
            if context is not None:
                self.scope.append(node.name)
                self._add(
                    "undecorated-capture-candidate",
                    node.lineno,
                    f"@auto_capture_errors would detect context_type={context!r}",
                    context=context,
                )
                self.scope.pop()
        self.scope.append(node.name)
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1
        self.scope.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    # -- except blocks and suppress() ------------------------------------------------------------
    def visit_Try(self, node: ast.Try) -> None:
        function = self.scope[-1] if self.scope else ""
        probing = (
            rules.imports_something(node.body)
            or rules.is_parse_probe(node.body)
            or rules.only_logs_or_asserts(node.body)
        )
        cleanup = rules.is_cleanup(function, node.body)
        for handler in node.handlers:
            types = rules.caught_types(handler)
            if probing or cleanup or not rules.is_error_path(types, self.local):
                continue
            if rules.is_poll_timeout(handler, types) or rules.reports_on_console(handler):
                continue
            if rules.returns_the_exception(handler):
                continue
            outcome: HandlerOutcome = rules.handler_outcome(handler, broad=True)
            caught = ", ".join(types) if handler.type is not None else "(bare except)"
            detail = f"except {caught}: {outcome.detail}"
            self._path(outcome.kind, outcome.reaches, outcome.line, detail, also=handler.lineno)
        self.generic_visit(node)

    def visit_TryStar(self, node: Any) -> None:  # ``except*`` (Python 3.11+): the same rules
        self.visit_Try(node)

    def _with(self, node: ast.AST, items: list[ast.withitem]) -> None:
        for item in items:
            call = item.context_expr
            if not isinstance(call, ast.Call):
                continue
            leaf = rules._leaf(call.func)
            target = rules._leaf(item.optional_vars) if item.optional_vars is not None else ""
            if leaf in _TASK_GROUPS and target:
                self.task_groups.add(target)
            elif leaf in _THREAD_EXECUTORS | _PROCESS_EXECUTORS and target:
                self.executors[target] = "process" if leaf in _PROCESS_EXECUTORS else "thread"
            elif leaf == "suppress":
                types = [rules._dotted(a) or "?" for a in call.args]
                if types and rules.is_error_path(types, self.local):
                    self._path(
                        "swallowed-exception", False, call.lineno, f"contextlib.suppress({', '.join(types)})"
                    )
        self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        self._with(node, node.items)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        self._with(node, node.items)

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call):
            leaf = rules._leaf(node.value.func)
            if leaf in _THREAD_EXECUTORS | _PROCESS_EXECUTORS:
                for target in node.targets:
                    self.executors[rules._leaf(target)] = (
                        "process" if leaf in _PROCESS_EXECUTORS else "thread"
                    )
        self.generic_visit(node)

    # -- background work -----------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        leaf = rules._leaf(func)
        receiver = rules._leaf(func.value) if isinstance(func, ast.Attribute) else ""
        if leaf == "add_task" and isinstance(func, ast.Attribute):
            what = rules._dotted(node.args[0]) if node.args else "a task"
            self._path("background-task", True, node.lineno, f"{rules._dotted(func)}({what}, ...)")
        elif self._asyncio_spawn(func, receiver) and not self._retrieved(node):
            self._path(
                "task-not-retrieved", True, node.lineno, f"{rules._dotted(func)}(...) result not awaited"
            )
        elif self._thread(func, leaf, receiver):
            self._path("thread-not-retrieved", True, node.lineno, f"{rules._dotted(func)}(...)")
        elif leaf == "submit" and self._executor(receiver) and not self._retrieved(node):
            kind = (
                "executor-not-retrieved-process"
                if self._executor(receiver) == "process"
                else "executor-not-retrieved"
            )
            self._path(
                kind,
                kind == "executor-not-retrieved",
                node.lineno,
                f"{rules._dotted(func)}(...) future not read",
            )
        elif leaf == "run_in_executor" and isinstance(self.parents.get(id(node)), ast.Expr):
            self._path("executor-not-retrieved", True, node.lineno, "run_in_executor(...) future not awaited")
        self.generic_visit(node)

    def _thread(self, func: ast.expr, leaf: str, receiver: str) -> bool:
        if isinstance(func, ast.Name):
            return func.id in self.thread_classes
        return leaf in ("Thread", "Timer") and receiver == "threading"

    def _asyncio_spawn(self, func: ast.expr, receiver: str) -> bool:
        """asyncio.create_task / loop.create_task / a create_task imported from asyncio; not a task
        group's (it re-raises) nor another object's method of the same name."""
        if isinstance(func, ast.Name):
            return func.id in self.asyncio_spawns
        if (
            not isinstance(func, ast.Attribute)
            or func.attr not in rules._TASK_SPAWN
            or receiver in self.task_groups
        ):
            return False
        return receiver == "asyncio" or "loop" in receiver.lower()

    def _executor(self, receiver: str) -> Optional[str]:
        if receiver in self.executors:
            return self.executors[receiver]
        lowered = receiver.lower()
        if "process" in lowered and ("pool" in lowered or "executor" in lowered):
            return "process"
        return "thread" if "executor" in lowered or "pool" in lowered else None

    def _retrieved(self, node: ast.Call) -> bool:
        """Whether what this spawn returns is awaited or read somewhere (conservatively: yes when
        it goes somewhere this scan cannot follow)."""
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Expr):
            return False
        if isinstance(parent, (ast.Assign, ast.AnnAssign)):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            return any(rules._leaf(t) in self.retrieved for t in targets)
        if (
            isinstance(parent, ast.Call)
            and isinstance(parent.func, ast.Attribute)
            and parent.func.attr in _CONTAINER_ADD
        ):
            return rules._leaf(parent.func.value) in self.retrieved
        return True


def parse(source: str, path: str) -> tuple[Optional[ast.Module], Optional[str]]:
    try:
        return ast.parse(source, filename=path), None
    except (SyntaxError, ValueError) as exc:
        return None, f"cannot parse: {exc}"


def scan_tree(
    tree: ast.Module, source: str, path: str, local_exceptions: frozenset[str] = frozenset()
) -> FileResult:
    """The findings and error-path counts of one parsed file. ``local_exceptions``: exception classes
    the scanned code defines (raised on purpose, see ``_audit.is_expected``)."""
    result = FileResult(path)
    _Scanner(result, source.splitlines(), module_name(path), tree, local_exceptions).visit(tree)
    result.findings.sort(key=lambda f: (f.line, f.kind))
    return result


def scan_source(source: str, path: str) -> FileResult:
    """One file on its own (its own exception classes count as local)."""
    tree, error = parse(source, path)
    if tree is None:
        return FileResult(path, error=error)
    return scan_tree(tree, source, path, frozenset(rules.exception_classes(tree)))
