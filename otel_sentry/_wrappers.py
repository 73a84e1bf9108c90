"""Wrappers generated with the decorated function's own parameter list (``@auto_capture_errors``).

A generic ``def wrapper(*args, **kwargs)`` packs a tuple and a dict on every call; a wrapper with
the function's exact parameters (generated once, as ``dataclasses`` and ``attrs`` generate methods)
makes the success path one plain call and a ``try``, about a quarter of the cost
(bench/decorator_overhead.py). When a signature cannot be reproduced, None: the caller falls back
to the generic wrapper.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional

_TEMPLATE = """
def _make(_os_func, _os_report, _os_below, _os_reraise{defaults}):
    {kw}def {name}({params}):
        try:
            return {aw}_os_func({call})
        except Exception as _os_exc:
            _os_report(_os_exc, _os_below(_os_exc), ({report_args}), {report_kwargs})
            del {names}
            if _os_reraise:
                raise
            return None
    return {name}
"""


def fast_wrapper(
    func: Callable[..., Any],
    qualname: str,
    report: Callable[..., None],
    below: Callable[[BaseException], Any],
    reraise: bool,
    is_async: bool,
) -> Optional[Callable[..., Any]]:
    """A wrapper with the function's own parameter list, generated once (as attrs and dataclasses
    do): a call then costs one plain call instead of packing ``*args``/``**kwargs`` (about half the
    overhead). None when the signature cannot be reproduced; the generic wrapper is used then."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params: list[str] = []
    call: list[str] = []
    positional: list[str] = []
    keywords: list[str] = []
    defaults: dict[str, Any] = {}
    kinds = [p.kind for p in signature.parameters.values()]
    for index, p in enumerate(signature.parameters.values()):
        name = p.name
        if not name.isidentifier() or name.startswith("_os_"):
            return None
        default = ""
        if p.default is not inspect.Parameter.empty:
            defaults[f"_os_d{index}"] = p.default
            default = f"=_os_d{index}"
        star_needed = inspect.Parameter.VAR_POSITIONAL not in kinds and "*" not in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and star_needed:
            params.append("*")
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            params.append(f"*{name}")
            call.append(f"*{name}")
            positional.append(f"*{name}")
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            params.append(f"**{name}")
            call.append(f"**{name}")
            keywords.append(f"**{name}")
        elif p.kind is inspect.Parameter.KEYWORD_ONLY:
            params.append(f"{name}{default}")
            call.append(f"{name}={name}")
            keywords.append(f"{name!r}: {name}")
        else:
            params.append(f"{name}{default}")
            call.append(name)
            positional.append(name)
        if p.kind is inspect.Parameter.POSITIONAL_ONLY and (
            index + 1 == len(kinds) or kinds[index + 1] is not inspect.Parameter.POSITIONAL_ONLY
        ):
            params.append("/")
    names = [p.name for p in signature.parameters.values()]
    source = _TEMPLATE.format(
        defaults="".join(f", {d}" for d in defaults),
        kw="async " if is_async else "",
        aw="await " if is_async else "",
        name=getattr(func, "__name__", "wrapper")
        if str(getattr(func, "__name__", "")).isidentifier()
        else "wrapper",
        params=", ".join(params),
        call=", ".join(call),
        report_args="".join(f"{a}, " for a in positional),
        report_kwargs="{" + ", ".join(keywords) + "}",
        names=", ".join(names) if names else "_os_exc",
    )
    namespace: dict[str, Any] = {}
    try:
        exec(compile(source, f"<otel_sentry auto_capture_errors {qualname}>", "exec"), namespace)
        wrapper: Callable[..., Any] = namespace["_make"](func, report, below, reraise, **defaults)
    except (SyntaxError, TypeError, ValueError):
        return None
    return functools.wraps(func)(wrapper)
