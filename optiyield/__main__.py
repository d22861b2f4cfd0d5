"""``python -m optiyield`` runs the command line."""

from optiyield.cli import app

app()
