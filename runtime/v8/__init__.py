"""The V8 script host: one child process per script, the wire protocol, batches, the prelude."""
