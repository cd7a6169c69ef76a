"""Indexes the monthly report's queries need on other domains' tables (created by migration 0003).

The report reads administrations by instrument and completion time for one month (clients rated, tension reports,
therapist ratings, the not-on-track checkpoint, component drops). Without this index each of those is a full scan
of the largest table; with it, an index range scan over one month of one or two instruments.
"""

from sqlalchemy import Index

from services.surveys.models import Administration

ADMINISTRATIONS_BY_INSTRUMENT_TIME = Index(
    "ix_administrations_instrument_completed",
    Administration.instrument_code,
    Administration.completed_at,
)
