"""Operational state: periodic job runs and process heartbeats."""
