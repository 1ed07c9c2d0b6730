"""Notifications: farm events (a job completed, failed or needs input; a printer faulted or
needs its bed cleared; a spool runs low) sent to signed webhooks and through Apprise.

Floors: this package reads `models` and `runtime` only; the orchestrator starts it.
"""
