"""The engine: the pipeline that drives capture, batches and every script, and the script set."""
