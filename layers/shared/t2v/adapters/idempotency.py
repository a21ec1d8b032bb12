"""The `idem#<key>` items of the jobs table: an API Idempotency-Key and the job it started."""

from __future__ import annotations

from datetime import datetime

from t2v.adapters.jobs_table import JobsTable
from t2v.times import iso


class IdempotencyKeys(JobsTable):
    def remember_idempotency_key(self, key: str, job_id: str, *, now: datetime) -> str:
        """Bind an API Idempotency-Key to a job id; returns the job id bound first."""
        existing = self._put_new(
            {
                "pk": f"idem#{key}",
                "job_id": job_id,
                "created_at": iso(now),
                "expires_at": int(now.timestamp()) + 86400,
            }
        )
        return job_id if existing is None else str(existing["job_id"])
