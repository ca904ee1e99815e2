"""The ``largeforge`` command line: Typer sub-apps, one per command group; thin by design."""
