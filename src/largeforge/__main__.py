"""``python -m largeforge`` runs the CLI."""

from largeforge.cli.main import main

main()
