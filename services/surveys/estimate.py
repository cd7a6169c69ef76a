"""How long a survey takes, from the questions it asks: one figure for the invitation message and the first page."""

from __future__ import annotations

import math
from collections.abc import Sequence

from services.surveys.submission import plan_survey

SECONDS_PER_QUESTION = 5


def question_count(instruments: Sequence[str], goals: Sequence[str]) -> int:
    """The questions a survey of these instruments asks, with one element of each rotating group and set goals only."""
    set_goals = [str(goal) for goal in goals if str(goal).strip()]  # as the survey pages read them
    steps = plan_survey(instruments, set_goals, rotating_item=None)
    rotating = {(step.code, item.rotation) for step in steps for item in step.instrument.items if item.rotation}
    return sum(len(step.questions) for step in steps) + len(rotating)


def survey_minutes(instruments: Sequence[str], goals: Sequence[str]) -> int:
    """Whole minutes a survey takes at about five seconds a question, rounded up (at least one)."""
    return max(1, math.ceil(question_count(instruments, goals) * SECONDS_PER_QUESTION / 60))
