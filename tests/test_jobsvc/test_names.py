"""Names are matched whole: a `$`-anchored pattern with .match() would let "default\n" through."""
from __future__ import annotations

import pytest

from jobsvc.admin.bulk import BulkFilter
from jobsvc.admin.listing import JobFilter
from jobsvc.engine.job import JobSpec
from jobsvc.errors import ValidationError


@pytest.mark.parametrize("queue", ["default\n", "default\r\n", "\ndefault", "de fault", ""])
def test_a_queue_name_with_a_newline_or_space_is_refused_everywhere(queue):
    with pytest.raises(ValidationError):
        JobSpec(func="tests.jobfuncs.noop", queue=queue)
    with pytest.raises(ValidationError):
        BulkFilter(queue=queue).validated()
    with pytest.raises(ValidationError):
        JobFilter(queue=queue).validated()


def test_namespace_and_job_id_are_matched_whole():
    with pytest.raises(ValidationError):
        JobSpec(func="tests.jobfuncs.noop", namespace="ns\n")
    with pytest.raises(ValidationError):
        JobSpec(func="tests.jobfuncs.noop", job_id="id\n")
