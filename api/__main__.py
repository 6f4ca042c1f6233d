"""``python -m api`` runs the ``gridmap`` command line."""

from api.cli import main

main()
