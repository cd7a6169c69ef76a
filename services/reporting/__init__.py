"""Aggregate queries for reports and the stored monthly reports."""
