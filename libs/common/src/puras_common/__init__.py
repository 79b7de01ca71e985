"""Shared building blocks of the Puras services.

Nothing here is service-specific: event and command types, the event-log client,
the projection runner, settings, logging, telemetry, auth primitives, the skill
manifest rules and the pure folds (views) that more than one service needs.
"""
