"""``python -m purasbackend_mcp``: the same as the ``purasbackend-mcp`` command."""

from purasbackend_mcp.server import main

main()
