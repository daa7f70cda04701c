"""`python -m frugalml.cli`: the `frugal` command."""

from frugalml.cli import run

run()
