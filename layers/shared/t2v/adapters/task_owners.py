"""The `task#<task_id>` items of the jobs table: which job owns a provider task, bound and released
together with the job (`t2v.adapters.jobs_table` lays the table out).

Binding a task puts its job on `stats#active` and releasing it takes it off (a terminal move of the
job takes it off too: `JobsRepository.transition`).
"""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from t2v.adapters import is_conditional_failure
from t2v.adapters.jobs_table import JobsTable
from t2v.errors import PipelineError
from t2v.jobs import CONTESTED, FOREIGN, JobStatus, Write
from t2v.times import iso


class TaskOwners(JobsTable):
    def owner_of_task(self, task_id: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"task#{task_id}"}, ConsistentRead=True).get("Item")
        return str(item["job_id"]) if item else None

    def contest_task(self, task_id: str, *, job_id: str, now: datetime) -> None:
        """Mark a provider task nobody could prove theirs as owned by no job, so none adopts it later
        (a later lone claimant may only be the one left, not the owner). No-op if already owned."""
        try:
            self._table.put_item(
                Item={"pk": f"task#{task_id}", "job_id": CONTESTED, "by": job_id, "created_at": iso(now)},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    def record_task(self, job_id: str, *, task_id: str, request_id: str | None, now: datetime) -> Write:
        """Bind the provider task to the job, once: done with the SUBMITTED job, or not done with the job
        as it stands when it already has a task (or ended) or the task already belongs to another job.

        Ownership is written first: a crash between the two writes leaves the task owned by this job,
        which reconciliation recognises as ours.
        """
        try:
            self._table.put_item(
                Item={"pk": f"task#{task_id}", "job_id": job_id, "created_at": iso(now)},
                ConditionExpression="attribute_not_exists(pk) OR job_id = :job",
                ExpressionAttributeValues={":job": job_id},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            # Another job's task (a rare race with its reconciliation): the job was not written, so
            # its state comes from a read.
            current = self._read_job(job_id)
            if current is None:
                raise PipelineError(f"job {job_id} not found") from None
            return Write(False, current)
        bound = self._update(
            job_id,
            UpdateExpression="SET task_id = :task, #s = :status, submitted_at = :now, updated_at = :now, "
            "history = list_append(if_not_exists(history, :empty), :h), "
            "request_ids = list_append(if_not_exists(request_ids, :empty), :rid)",
            ConditionExpression="attribute_not_exists(task_id) AND #s IN (:accepted, :waiting)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":task": task_id,
                ":status": JobStatus.SUBMITTED.value,
                ":now": iso(now),
                ":h": [{"status": JobStatus.SUBMITTED.value, "at": iso(now)}],
                ":rid": [request_id] if request_id else [],
                ":empty": [],
                ":accepted": JobStatus.ACCEPTED.value,
                ":waiting": JobStatus.WAITING.value,  # queued for capacity: no task yet either
            },
        )
        if bound.done:
            self._count_active(+1)
        return bound

    def release_task(self, job_id: str, *, task_id: str, now: datetime) -> bool:
        """Unbind a task shown not to be the job's (another client's), so that the job creates its own.

        The task is marked foreign first: a crash before the job is unbound leaves a job bound to a task
        nobody may adopt again, which the next check releases. The job goes back to ACCEPTED with no
        create claim. False when the job no longer holds that task.
        """
        try:
            self._table.put_item(
                Item={"pk": f"task#{task_id}", "job_id": FOREIGN, "by": job_id, "created_at": iso(now)},
                ConditionExpression="attribute_not_exists(pk) OR job_id IN (:job, :foreign)",
                ExpressionAttributeValues={":job": job_id, ":foreign": FOREIGN},
            )
            self._table.update_item(
                Key={"pk": job_id},
                UpdateExpression="SET #s = :accepted, updated_at = :now, released_tasks = "
                "list_append(if_not_exists(released_tasks, :empty), :task), "
                "history = list_append(if_not_exists(history, :empty), :h) "
                "REMOVE task_id, create_claimed_at, create_sent_at, create_ambiguous_at, adopted_unproven",
                ConditionExpression="task_id = :t AND NOT #s IN (:ok, :failed, :canceled, :timed_out)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":accepted": JobStatus.ACCEPTED.value,
                    ":now": iso(now),
                    ":task": [task_id],
                    ":t": task_id,
                    ":empty": [],
                    ":h": [{"status": JobStatus.ACCEPTED.value, "at": iso(now)}],
                    ":ok": JobStatus.SUCCEEDED.value,
                    ":failed": JobStatus.FAILED.value,
                    ":canceled": JobStatus.CANCELED.value,
                    ":timed_out": JobStatus.TIMED_OUT.value,
                },
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        self._count_active(-1)  # counted when the task was bound; the job's own task counts again
        return True
