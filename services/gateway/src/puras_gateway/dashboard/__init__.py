"""The web dashboard: static files the gateway serves at ``/`` (index) and ``/ui/``.

The pages talk only to the public ``/v1`` API with the key the user signs in with, so
serving them is nothing but files with strict headers: no template, no server state.
"""

from puras_gateway.dashboard.serve import DASHBOARD_HEADERS, mount_dashboard

__all__ = ["DASHBOARD_HEADERS", "mount_dashboard"]
