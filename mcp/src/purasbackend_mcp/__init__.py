"""purasbackend-mcp: the Puras HTTP API as MCP tools, for AI coding agents.

``purasbackend-mcp`` serves MCP over stdio; :func:`purasbackend_mcp.server.create_server`
builds the server (tests pass an ``httpx`` transport instead of the network).
"""

__version__ = "0.1.0"
