"""Scripts: a V8 host per script, hooks, helpers, jobs, hot reload, the pipeline driver and the CLI."""
