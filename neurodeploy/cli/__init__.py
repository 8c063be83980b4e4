"""The command line: one module per command group; the entry point is neurodeploy/cli/main.py."""
