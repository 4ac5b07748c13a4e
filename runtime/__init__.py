"""Scripts: a V8 host per script, hooks, helpers, jobs, hot reload, the pipeline driver and the CLI.

The names below load on first use, so the per-script V8 child (`python -m runtime.isolate`) starts
without importing capture, kfl or wrappers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Pipeline": "runtime.pipeline",
    "PipelineConfig": "runtime.pipeline",
    "ScriptHost": "runtime.host",
    "LoadError": "runtime.host",
    "Scripts": "runtime.scripts",
    "Services": "runtime.services",
    "Limits": "runtime.services",
    "Clock": "runtime.services",
    "Console": "runtime.console",
    "Scheduler": "runtime.jobs",
    "build_env": "runtime.env",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    return getattr(import_module(module), name)
