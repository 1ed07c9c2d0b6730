"""The job state machine: every allowed move, and a refusal for each forbidden one."""

from __future__ import annotations

import itertools

import pytest

from printforge.models.job import ACTIVE, TERMINAL, TRANSITIONS, Job, JobState
from printforge.models.request import PrintRequest
from printforge.runtime.errors import InvalidTransition

S = JobState

ALLOWED = {
    (S.QUEUED, S.RESEARCHING),
    (S.QUEUED, S.DESIGNING),
    (S.QUEUED, S.SLICING),
    (S.QUEUED, S.PRINTING),
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.CANCELLED),
    (S.RESEARCHING, S.DESIGNING),
    (S.RESEARCHING, S.COMPLETED),
    (S.DESIGNING, S.RESEARCHING),  # the research repair loop may go back
    (S.DESIGNING, S.SLICING),
    (S.DESIGNING, S.COMPLETED),
    (S.SLICING, S.PRINTING),
    (S.SLICING, S.COMPLETED),
    (S.PRINTING, S.COMPLETED),
    (S.INTERRUPTED, S.QUEUED),
    (S.INTERRUPTED, S.FAILED),
    (S.INTERRUPTED, S.CANCELLED),
    # Research asked a question: the job waits; job.answer re-queues it.
    (S.RESEARCHING, S.NEEDS_INPUT),
    (S.NEEDS_INPUT, S.QUEUED),
    (S.NEEDS_INPUT, S.FAILED),
    (S.NEEDS_INPUT, S.CANCELLED),
}
for active in ACTIVE:
    for ending in (S.FAILED, S.CANCELLED, S.INTERRUPTED):
        ALLOWED.add((active, ending))


def job_in(state: JobState) -> Job:
    job = Job(request=PrintRequest(text="a cube"))
    job.state = state
    return job


@pytest.mark.parametrize(("old", "new"), sorted(itertools.product(S, S)))
def test_every_pair(old: JobState, new: JobState) -> None:
    job = job_in(old)
    if (old, new) in ALLOWED:
        assert job.transition(new) is old
        assert job.state is new
    else:
        with pytest.raises(InvalidTransition, match=f"from {old} to {new}"):
            job.transition(new)
        assert job.state is old


def test_table_matches_the_documented_flow() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED
    for state in TERMINAL:
        assert not TRANSITIONS[state], f"{state} is terminal"


def test_requeue_clears_the_error() -> None:
    from printforge.models.job import JobError

    job = job_in(S.PRINTING)
    job.transition(S.INTERRUPTED, error=JobError(code="printer_disconnected", message="gone"))
    assert job.error is not None
    job.transition(S.QUEUED)
    assert job.error is None


def test_request_needs_exactly_one_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="exactly one"):
        PrintRequest()
    with pytest.raises(ValueError, match="exactly one"):
        PrintRequest(text="a cube", gcode_path=tmp_path / "x.gcode")
    with pytest.raises(ValueError, match="empty"):
        PrintRequest(text="   ")
