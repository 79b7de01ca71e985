"""One module per command group of ``puras``; :mod:`puras_cli.main` assembles them."""
