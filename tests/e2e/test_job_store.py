"""The job store on SQLite and PostgreSQL alike: one claimant per job, one answer per job,
however often it ran."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from modelport.config import Settings
from modelport.errors import ConflictError, JobNotFoundError
from modelport.jobs import Job, JobKind, JobState, JobStore, NewJob
from modelport.jobs.store import INPUT, RESULT, Beat
from modelport.registry import Registry

TTL = timedelta(hours=1)
NOW = timedelta(0)


@pytest.fixture
def store(backend: Settings) -> Iterator[JobStore]:
    registry = Registry.from_settings(backend)
    yield JobStore(registry.database)
    registry.close()


def submit(store: JobStore, name: str = "iris", body: bytes = b'{"instances": [[1]]}') -> Job:
    return store.submit(NewJob(JobKind.PREDICT, name, name, "v1", {}, None, "req-1", body))


def succeed(store: JobStore, job_id: str, worker: str, body: bytes) -> bool:
    return store.succeed(
        job_id,
        worker,
        model="iris",
        version=1,
        rows=1,
        body=body,
        media_type="application/json",
        ttl=TTL,
    )


def test_a_job_is_claimed_once_by_the_worker_that_serves_its_model(store: JobStore) -> None:
    job = submit(store)
    assert store.payload(job.id, INPUT) == b'{"instances": [[1]]}'
    assert store.claim("a", ["fraud"]) is None
    assert store.claim("a", []) is None
    claimed = store.claim("a", ["iris", "fraud"])
    assert claimed is not None
    assert (claimed.id, claimed.state, claimed.worker, claimed.attempts) == (
        job.id,
        JobState.RUNNING,
        "a",
        1,
    )
    assert store.claim("b", ["iris"]) is None


def test_concurrent_workers_split_the_queue_without_overlap(store: JobStore) -> None:
    submitted = {submit(store).id for _ in range(24)}
    claimed: dict[str, list[str]] = {}

    def work(worker: str) -> None:
        mine = claimed.setdefault(worker, [])
        while (job := store.claim(worker, ["iris"])) is not None:
            mine.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [job_id for ids in claimed.values() for job_id in ids]
    assert sorted(every) == sorted(submitted)


def test_a_silent_workers_late_answer_is_discarded(store: JobStore) -> None:
    job = submit(store)
    assert store.claim("first", ["iris"]) is not None
    assert [j.id for j in store.recover(NOW, max_attempts=3, ttl=TTL)] == [job.id]
    assert store.get(job.id).state is JobState.QUEUED
    assert store.claim("second", ["iris"]) is not None
    assert store.heartbeat(job.id, "first", 1, 1) is Beat.LOST
    assert not succeed(store, job.id, "first", b'"first"')
    assert not store.fail(job.id, "first", {"code": "x"}, TTL)
    assert succeed(store, job.id, "second", b'"second"')
    assert not succeed(store, job.id, "second", b'"again"')
    done = store.get(job.id)
    assert (done.state, done.attempts, done.rows_done) == (JobState.SUCCEEDED, 2, 1)
    assert store.payload(job.id, RESULT) == b'"second"'


def test_a_worker_that_keeps_reporting_keeps_its_job(store: JobStore) -> None:
    job = submit(store)
    store.claim("a", ["iris"])
    assert store.heartbeat(job.id, "a", 5, 10) is Beat.GOING
    assert store.recover(timedelta(minutes=5), max_attempts=3, ttl=TTL) == []
    assert store.get(job.id).rows_done == 5


def test_passing_failures_are_retried_until_the_attempts_run_out(store: JobStore) -> None:
    job = submit(store)
    error = {"code": "storage_unavailable"}
    store.claim("a", ["iris"])
    later = store.retry_later(job.id, "a", error, timedelta(hours=1), max_attempts=2, ttl=TTL)
    assert later is JobState.QUEUED
    assert store.claim("a", ["iris"]) is None  # not due yet
    store.retry_later(job.id, "nobody", error, NOW, max_attempts=2, ttl=TTL)
    assert store.get(job.id).state is JobState.QUEUED


def test_the_last_attempt_fails_the_job(store: JobStore) -> None:
    job = submit(store)
    store.claim("a", ["iris"])
    queued = store.retry_later(job.id, "a", {"code": "x"}, NOW, max_attempts=2, ttl=TTL)
    assert queued is JobState.QUEUED
    store.claim("a", ["iris"])
    failed = store.retry_later(job.id, "a", {"code": "x"}, NOW, max_attempts=2, ttl=TTL)
    assert failed is JobState.FAILED
    assert store.get(job.id).error == {"code": "x"}


def test_a_lost_worker_on_its_last_attempt_fails_the_job(store: JobStore) -> None:
    job = submit(store)
    store.claim("a", ["iris"])
    store.recover(NOW, max_attempts=1, ttl=TTL)
    lost = store.get(job.id)
    assert lost.state is JobState.FAILED
    assert lost.error is not None
    assert lost.error["code"] == "worker_lost"


def test_a_released_job_is_queued_without_spending_an_attempt(store: JobStore) -> None:
    job = submit(store)
    store.claim("a", ["iris"])
    assert store.release(job.id, "a", TTL)
    released = store.get(job.id)
    assert (released.state, released.attempts, released.worker) == (JobState.QUEUED, 0, None)


def test_cancelling_queued_running_and_finished_jobs(store: JobStore) -> None:
    queued = submit(store)
    assert store.cancel(queued.id, ttl=TTL).state is JobState.CANCELLED
    with pytest.raises(ConflictError, match="cancelled"):
        store.cancel(queued.id, ttl=TTL)
    running = submit(store)
    store.claim("a", ["iris"])
    asked = store.cancel(running.id, ttl=TTL)
    assert (asked.state, asked.cancel_requested) == (JobState.RUNNING, True)
    assert store.heartbeat(running.id, "a", 1, 2) is Beat.CANCEL
    assert store.stopped(running.id, "a", TTL)
    assert store.get(running.id).state is JobState.CANCELLED
    with pytest.raises(JobNotFoundError):
        store.cancel("0" * 32, ttl=TTL)


def test_expired_jobs_go_with_their_payloads(store: JobStore) -> None:
    old, kept = submit(store), submit(store)
    store.claim("a", ["iris"])
    succeed_expired = store.succeed(
        old.id,
        "a",
        model="iris",
        version=1,
        rows=1,
        body=b"{}",
        media_type="application/json",
        ttl=-TTL,
    )
    assert succeed_expired
    assert store.purge() == 1
    with pytest.raises(JobNotFoundError):
        store.get(old.id)
    with pytest.raises(JobNotFoundError):
        store.payload(old.id, INPUT)
    assert store.get(kept.id).state is JobState.QUEUED


def test_listing_filters_and_orders_newest_first(store: JobStore) -> None:
    first, second = submit(store), submit(store, "fraud")
    assert [j.id for j in store.jobs()] == [second.id, first.id]
    assert [j.id for j in store.jobs(name="iris")] == [first.id]
    assert [j.id for j in store.jobs(state=JobState.RUNNING)] == []
    assert store.jobs(caller="someone") == []


def test_a_job_named_by_a_message_is_taken_only_when_nobody_live_has_it(store: JobStore) -> None:
    job = submit(store)
    lease = timedelta(minutes=5)
    taken = store.take(job.id, "a", lease, max_attempts=3, ttl=TTL)
    assert taken is not None
    assert (taken.worker, taken.attempts) == ("a", 1)
    # the message came again while "a" is alive: nothing to do
    assert store.take(job.id, "b", lease, max_attempts=3, ttl=TTL) is None
    # "a" went silent: the redelivered message moves the job to "b"
    moved = store.take(job.id, "b", NOW, max_attempts=3, ttl=TTL)
    assert moved is not None
    assert (moved.worker, moved.attempts) == ("b", 2)
    assert succeed(store, job.id, "b", b'"b"')
    assert store.take(job.id, "c", NOW, max_attempts=3, ttl=TTL) is None
    assert store.take("no-such-job", "c", NOW, max_attempts=3, ttl=TTL) is None


def test_a_silent_job_taken_on_its_last_attempt_fails_or_is_cancelled(store: JobStore) -> None:
    spent, cancelled = submit(store), submit(store)
    for job in (spent, cancelled):
        store.take(job.id, "a", NOW, max_attempts=1, ttl=TTL)
    store.cancel(cancelled.id, ttl=TTL)
    for job in (spent, cancelled):
        assert store.take(job.id, "b", NOW, max_attempts=1, ttl=TTL) is None
    assert store.get(spent.id).state is JobState.FAILED
    assert store.get(cancelled.id).state is JobState.CANCELLED


def test_queued_jobs_nobody_claimed_are_found_once_per_wait(store: JobStore) -> None:
    job = submit(store)
    assert store.unclaimed(timedelta(hours=1)) == []
    found = store.unclaimed(timedelta(microseconds=1))
    assert [j.id for j in found] == [job.id]
    assert store.get(job.id).run_after > job.run_after
    store.claim("a", ["iris"])
    assert store.unclaimed(timedelta(microseconds=1)) == []
