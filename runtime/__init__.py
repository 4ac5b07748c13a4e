"""Scripts: a V8 host per script, hooks, helpers, jobs, hot reload, the pipeline driver and the CLI.

The names below load on first use, so the per-script V8 child (`python -m runtime.v8.child`) starts
without importing capture, kfl or wrappers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Pipeline": "runtime.engine.pipeline",
    "PipelineConfig": "runtime.engine.pipeline",
    "ScriptHost": "runtime.v8.host",
    "LoadError": "runtime.v8.host",
    "Scripts": "runtime.engine.scripts",
    "Services": "runtime.helpers.services",
    "Limits": "runtime.helpers.services",
    "Clock": "runtime.helpers.services",
    "Console": "runtime.helpers.console",
    "Scheduler": "runtime.helpers.jobs",
    "build_env": "runtime.helpers.env",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    return getattr(import_module(module), name)
