"""Objects that must start over in a forked child (locks a parent thread held, queues and state that
belong to the parent), registered without keeping them alive."""

from __future__ import annotations

import os
import weakref
from typing import Any


def reset_in_child(obj: Any, method: str) -> None:
    """Call ``obj.<method>()`` in every child forked after this, while ``obj`` is alive."""
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(obj)

    def after_in_child() -> None:
        target = ref()
        if target is not None:
            getattr(target, method)()

    os.register_at_fork(after_in_child=after_in_child)
