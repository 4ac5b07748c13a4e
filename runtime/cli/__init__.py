"""The `kflpcap` command line: `main`, one module per sub-command, the summary and metrics."""

from runtime.cli.main import entry, main

__all__ = ["entry", "main"]
