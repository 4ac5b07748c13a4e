from runtime.cli.main import entry

entry()
