"""`modelport stream` against a real Redis, the consumer a real subprocess: answers that carry
their input's id, dead letters, nothing lost to a SIGKILL, a graceful SIGTERM, and entries a
dead consumer left pending claimed by another."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.errors import ConfigurationError
from modelport.jobs.streaming import Counts, StreamAddress, StreamOptions, consume
from tests.conftest import port_open, service_missing
from tests.e2e.conftest import free_port, settings_env
from tests.e2e.doubles import SlowModel, SlowPoisonModel

REDIS_URL = "redis://127.0.0.1:6379/15"
GROUP = "modelport-slow"
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """With the prediction log: a message is a request like any other."""
    return make_settings(prediction_log=True)


@dataclass
class Streams:
    """This test's source, sink and dead-letter streams (keys of its own: workers share the
    Redis)."""

    client: redis.Redis
    prefix: str
    redis_url: str = REDIS_URL

    @property
    def source(self) -> str:
        return f"{self.prefix}:in"

    @property
    def sink(self) -> str:
        return f"{self.prefix}:out"

    @property
    def dead(self) -> str:
        return f"{self.source}.dead"

    def url(self, stream: str) -> str:
        return f"{self.redis_url}/{stream}"

    def add(self, bodies: list[Any]) -> list[str]:
        """One message per body (JSON unless already text); their ids."""
        with self.client.pipeline(transaction=False) as pipe:
            for body in bodies:
                text = body if isinstance(body, str) else json.dumps(body)
                pipe.xadd(self.source, {"body": text})
            return [str(i) for i in pipe.execute()]

    def entries(self, stream: str) -> list[dict[str, str]]:
        return [fields for _id, fields in self.client.xrange(stream)]

    def answers(self) -> dict[str, Any]:
        """The sink's bodies by input id, checking that every copy of an answer is the same."""
        found: dict[str, Any] = {}
        for entry in self.entries(self.sink):
            body = json.loads(entry["body"])
            assert found.setdefault(entry["id"], body) == body
        return found

    def pending(self, group: str = GROUP) -> int:
        return int(self.client.xpending(self.source, group)["pending"])


@pytest.fixture
def streams() -> Iterator[Streams]:
    if not port_open("127.0.0.1", 6379):
        service_missing("Redis on 127.0.0.1:6379")
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"modelport:test:stream:{uuid.uuid4().hex}"
    yield Streams(client, prefix)
    keys = client.keys(f"{prefix}*")
    if keys:
        client.delete(*keys)
    client.close()


@dataclass
class Consumer:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def consumer(
    settings: Settings, streams: Streams, tmp_path: Path
) -> Iterator[Callable[..., Consumer]]:
    """``consumer("slow", "--batch", "4")``: `modelport stream` from the test's source to its
    sink, killed at the end of the test if it still runs."""
    started: list[Consumer] = []

    def start(model: str, *extra: str, on: Streams = streams) -> Consumer:
        log_path = tmp_path / f"consumer-{len(started)}.log"
        command = [sys.executable, "-m", "modelport", "stream", "-m", model,
                   "--source", on.url(on.source), "--sink", on.url(on.sink),
                   "--block-ms", "100", *extra]  # fmt: skip
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=settings_env(settings)
            )
        started.append(Consumer(process, log_path))
        return started[-1]

    yield start
    for running in started:
        if running.process.poll() is None:
            running.kill()


def wait_for(done: Callable[[], bool], what: Consumer, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert what.process.poll() is None, what.log()
        assert time.monotonic() < deadline, what.log()
        time.sleep(0.05)


@pytest.fixture
def slow(settings: Settings) -> None:
    """50 ms a call, fails on a row holding -1, answers each row's sum."""
    modelport.log_model(SlowPoisonModel(), "slow", np.ones((2, 3)), settings=settings)


def rows_body(first: float) -> dict[str, Any]:
    return {"instances": [[first, 1.0, 1.0]]}


@pytest.mark.parametrize(
    ("url", "connection", "shown", "stream"),
    [
        ("redis://127.0.0.1:6379/0/orders", "redis://127.0.0.1:6379/0",
         "redis://127.0.0.1:6379/0/orders", "orders"),
        ("rediss://app:secret@cache:6380/3/a/b%20c", "rediss://app:secret@cache:6380/3",
         "rediss://cache:6380/3/a/b c", "a/b c"),
        ("redis://[::1]:6379/0/{tx}:in", "redis://[::1]:6379/0", "redis://[::1]:6379/0/{tx}:in",
         "{tx}:in"),
    ],
)  # fmt: skip
def test_a_stream_address_names_the_database_and_the_stream_and_shows_no_password(
    url: str, connection: str, shown: str, stream: str
) -> None:
    address = StreamAddress.parse(url)
    assert (address.connection, str(address), address.stream) == (connection, shown, stream)


@pytest.mark.parametrize(
    "url", ["redis://h:6379/orders", "redis://h:6379/0/", "http://h/0/x", "redis:///0/x"]
)
def test_a_stream_address_without_a_database_or_a_stream_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="expected redis://host:6379/<db>/<stream>") as no:
        StreamAddress.parse(url.replace("h:", "user:pw@h:"))
    assert "pw" not in str(no.value)


def test_the_command_refuses_a_bad_address_before_loading_anything(cli: Cli) -> None:
    done = cli("stream", "-m", "slow", "--source", "redis://127.0.0.1:6379/orders", "--sink",
               "redis://127.0.0.1:6379/0/scored")  # fmt: skip
    assert done.returncode == 1
    assert "expected redis://host:6379/<db>/<stream>" in done.stderr
    assert "next: check --source and --sink" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_sink_that_is_not_a_stream_is_refused_before_anything_is_read(
    slow: None, streams: Streams, consumer: Callable[..., Consumer]
) -> None:
    """Inside the transaction, a failed XADD would not stop the XACK beside it."""
    streams.client.set(streams.sink, "someone's value")
    streams.add([rows_body(1)])
    refused = consumer("slow")
    assert refused.process.wait(timeout=60) == 1
    assert f"{streams.url(streams.sink)} is a Redis string, not a stream" in refused.log()
    assert streams.pending() == 0  # nothing was read


def test_answers_carry_their_inputs_id_and_match_in_process_predictions(
    settings: Settings,
    streams: Streams,
    consumer: Callable[..., Consumer],
    iris_logreg: LogisticRegression,
    iris_data: Any,
) -> None:
    X = iris_data[0]
    modelport.log_model(iris_logreg, "iris", X[:20], settings=settings)
    rows = [X[i : i + 3] for i in range(0, 90, 3)]
    v1 = streams.add([{"instances": r.tolist()} for r in rows[:10]])
    tensor = {"name": "input", "shape": [3, 4], "datatype": "FP64"}
    v2 = streams.add([{"inputs": [{**tensor, "data": r.ravel().tolist()}]} for r in rows[10:20]])
    mlflow = streams.add([{"dataframe_split": {"data": r.tolist()}} for r in rows[20:]])
    running = consumer("iris", "--batch", "8")
    wait_for(lambda: streams.client.xlen(streams.sink) >= 30, running)
    assert running.terminate() == 0, running.log()

    assert "stopped: 30 read, 30 written, 0 dead-lettered" in running.log()
    entries = streams.entries(streams.sink)
    assert [e["id"] for e in entries] == v1 + v2 + mlflow  # in order, one each
    assert {(e["model"], e["version"]) for e in entries} == {("iris", "1")}
    answers = streams.answers()
    for ids, chunk in ((v1, rows[:10]), (mlflow, rows[20:])):
        for entry_id, r in zip(ids, chunk, strict=True):
            assert answers[entry_id] == {"predictions": iris_logreg.predict(r).tolist()}
    for entry_id, r in zip(v2, rows[10:20], strict=True):
        outputs = {o["name"]: o for o in answers[entry_id]["outputs"]}
        assert outputs["label"]["data"] == iris_logreg.predict(r).tolist()
        assert np.allclose(
            np.reshape(outputs["probabilities"]["data"], (3, 3)), iris_logreg.predict_proba(r)
        )
    assert streams.pending("modelport-iris") == 0
    assert not streams.client.exists(streams.dead)


def test_messages_that_cannot_be_answered_go_to_the_dead_letters_and_the_rest_are_answered(
    slow: None, streams: Streams, consumer: Callable[..., Consumer], cli: Cli
) -> None:
    good = streams.add([rows_body(i) for i in range(10)])
    poisoned = streams.add([rows_body(-1), "{not json", {"instances": [[1.0, 2.0]]}])
    more = streams.add([rows_body(i) for i in range(10, 20)])
    no_body = str(streams.client.xadd(streams.source, {"payload": "x"}))
    running = consumer("slow", "--batch", "8")
    wait_for(lambda: streams.client.xlen(streams.sink) + streams.client.xlen(streams.dead) == 24,
             running)  # fmt: skip
    assert running.terminate() == 0, running.log()

    answers = streams.answers()
    assert answers == {
        entry_id: {"predictions": [i + 2.0]} for i, entry_id in enumerate(good + more)
    }
    dead = {entry["source_id"]: entry for entry in streams.entries(streams.dead)}
    assert list(dead) == [*poisoned, no_body]
    codes = [json.loads(entry["error"])["code"] for entry in dead.values()]
    assert codes == ["model_error", "malformed_request", "invalid_input", "malformed_request"]
    assert dead[poisoned[1]]["body"] == "{not json"  # the message's own fields, kept
    assert dead[no_body]["payload"] == "x"
    error = json.loads(dead[poisoned[0]]["error"])
    assert error["request_id"] == f"{streams.source}:{poisoned[0]}"
    assert "poisoned row" in error["detail"]
    assert "stopped: 24 read, 20 written, 4 dead-lettered" in running.log()
    for entry_id, status in ((good[0], 200), (poisoned[0], 500)):
        logged = cli("logs", "--request-id", f"{streams.source}:{entry_id}", "--json")
        entry = json.loads(logged.stdout)
        assert (entry["protocol"], entry["status"], entry["model"]) == ("stream", status, "slow")


@pytest.mark.parametrize("restart", ["new consumer", "same consumer"])
def test_a_consumer_killed_mid_stream_loses_no_message(
    slow: None, streams: Streams, consumer: Callable[..., Consumer], restart: str
) -> None:
    """SIGKILL while micro-batches are in flight; the next consumer (a new name claims what the
    dead one left pending, the same name reads its own pending entries first) answers the rest:
    every message at least once, and once after dedup by input id."""
    ids = streams.add([rows_body(i) for i in range(100)])
    same = ("--consumer", "worker-1") if restart == "same consumer" else ()
    first = consumer("slow", "--batch", "2", *same)
    wait_for(lambda: streams.client.xlen(streams.sink) >= 10 and streams.pending() > 0, first)
    first.kill()
    assert streams.client.xlen(streams.sink) < len(ids), "the kill came too late"
    left_pending = streams.pending()
    assert left_pending > 0, "the kill fell between two micro-batches"

    # a long idle time for the same name: its own pending entries must not wait for it
    min_idle = "60000" if same else "300"
    second = consumer("slow", "--batch", "2", "--min-idle-ms", min_idle, *same)
    wait_for(lambda: set(streams.answers()) >= set(ids), second)
    assert second.terminate() == 0, second.log()

    answers = streams.answers()
    assert Counter(e["id"] for e in streams.entries(streams.sink)).keys() == set(ids)
    assert answers == {entry_id: {"predictions": [i + 2.0]} for i, entry_id in enumerate(ids)}
    assert streams.pending() == 0
    assert not streams.client.exists(streams.dead)
    recovered = "this consumer left pending" if same else "other consumers left pending"
    assert f"{left_pending} entries {recovered}" in second.log()


def test_sigterm_finishes_the_micro_batch_in_flight_and_exits_with_everything_acked(
    slow: None, streams: Streams, consumer: Callable[..., Consumer]
) -> None:
    ids = streams.add([rows_body(i) for i in range(200)])
    running = consumer("slow", "--batch", "5")
    wait_for(lambda: streams.client.xlen(streams.sink) >= 10, running)
    assert running.terminate() == 0, running.log()

    assert streams.pending() == 0
    answered = [e["id"] for e in streams.entries(streams.sink)]
    assert answered == ids[: len(answered)]  # everything read was answered, in order, once
    assert len(answered) < len(ids)
    delivered = streams.client.xinfo_groups(streams.source)[0]["last-delivered-id"]
    assert delivered == answered[-1]
    n = len(answered)
    assert f"stopped: {n} read, {n} written, 0 dead-lettered" in running.log()


def test_entries_a_dead_consumer_left_pending_are_claimed_and_too_many_deliveries_dead_lettered(
    slow: None, streams: Streams, consumer: Callable[..., Consumer]
) -> None:
    client, source = streams.client, streams.source
    client.xgroup_create(source, GROUP, "0", mkstream=True)
    [worn] = streams.add([rows_body(100)])
    client.xreadgroup(GROUP, "ghost", {source: ">"})
    client.xclaim(source, GROUP, "ghost-2", 0, [worn])  # handed out twice already
    left = streams.add([rows_body(i) for i in range(5)])
    client.xreadgroup(GROUP, "ghost", {source: ">"})
    fresh = streams.add([rows_body(i) for i in range(5, 8)])

    running = consumer("slow", "--consumer", "fresh", "--min-idle-ms", "200",
                       "--max-deliveries", "2")  # fmt: skip
    wait_for(lambda: client.xlen(streams.sink) + client.xlen(streams.dead) == 9, running)
    assert running.terminate() == 0, running.log()

    answers = streams.answers()
    assert answers == {entry_id: {"predictions": [i + 2.0]} for i, entry_id in
                       enumerate(left + fresh)}  # fmt: skip
    [dead] = streams.entries(streams.dead)
    assert dead["source_id"] == worn
    assert "handed out 3 times" in json.loads(dead["error"])["detail"]
    consumers = {c["name"]: c["pending"] for c in client.xinfo_consumers(source, GROUP)}
    assert consumers == {"ghost": 0, "ghost-2": 0, "fresh": 0}
    assert "claimed 6 entries other consumers left pending" in running.log()


def start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    """A Redis of this test's own that keeps its data across a restart (append-only file)."""
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes", "--appendfsync", "always", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        assert server.poll() is None, "redis-server exited"
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    return server


def test_a_micro_batch_slower_than_the_idle_time_is_not_claimed_by_another_consumer(
    settings: Settings, streams: Streams, consumer: Callable[..., Consumer]
) -> None:
    """Each call takes 0.5 s, and a consumer claims what has been idle for 0.3 s: the two
    consumers keep their micro-batches in flight, so none is answered twice."""
    modelport.log_model(SlowModel(), "sleepy", np.array([[0.0]]), settings=settings)
    both = [consumer("sleepy", "--consumer", name, "--batch", "2", "--min-idle-ms", "300")
            for name in ("a", "b")]  # fmt: skip
    for running in both:
        wait_for(lambda: "streaming " in running.log(), running)  # noqa: B023
    ids = streams.add([{"instances": [[0.5]]} for _ in range(12)])
    wait_for(lambda: set(streams.answers()) == set(ids), both[0])
    assert [running.terminate() for running in both] == [0, 0]

    assert sorted(e["id"] for e in streams.entries(streams.sink)) == sorted(ids)
    for running in both:
        assert "claimed" not in running.log(), running.log()
    pending = streams.client.xpending_range(streams.source, "modelport-sleepy", "-", "+", 20)
    assert pending == []


def test_an_unreachable_redis_is_waited_out_and_nothing_is_lost(
    slow: None, consumer: Callable[..., Consumer], tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None:
        service_missing("redis-server, to start a Redis that the test stops")
    port = free_port()
    server = start_redis(port, tmp_path)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        own = Streams(redis.Redis.from_url(url, decode_responses=True), "outage", url)
        first = own.add([rows_body(i) for i in range(5)])
        running = consumer("slow", on=own)
        wait_for(lambda: own.client.xlen(own.sink) == 5, running)
        server.terminate()
        server.wait(timeout=10)
        wait_for(lambda: "Redis unreachable" in running.log(), running)
        server = start_redis(port, tmp_path)
        later = own.add([rows_body(i) for i in range(5, 10)])
        wait_for(lambda: own.client.xlen(own.sink) == 10, running)
        assert running.terminate() == 0, running.log()
        assert own.answers() == {
            entry_id: {"predictions": [i + 2.0]} for i, entry_id in enumerate(first + later)
        }
        assert own.pending() == 0
        assert running.log().count("trying again with backoff") == 1  # once per outage
        assert "stream consumer works again" in running.log()
    finally:
        server.kill()
        server.wait(timeout=10)


def test_the_consumer_in_process_answers_dead_letters_and_stops_when_asked(
    settings: Settings, streams: Streams, iris_logreg: LogisticRegression, iris_data: Any
) -> None:
    """The same loop the command runs, here in this process (its figures counted directly)."""
    modelport.log_model(iris_logreg, "iris", iris_data[0][:20], settings=settings)
    rows = iris_data[0][:3].tolist()
    ids = streams.add([{"instances": [row]} for row in rows] + ["{not json"])
    options = StreamOptions(
        "iris",
        StreamAddress.parse(streams.url(streams.source)),
        StreamAddress.parse(streams.url(streams.sink)),
        streams.dead,
        "modelport-iris",
        "in-process",
        block_ms=100,
    )

    async def run() -> Counts:
        stopping = asyncio.Event()
        consuming = asyncio.create_task(consume(settings, options, stopping))
        deadline = time.monotonic() + 30
        while len(streams.entries(streams.sink)) < 3 or not streams.entries(streams.dead):
            assert time.monotonic() < deadline
            assert not consuming.done()
            await asyncio.sleep(0.05)
        stopping.set()
        return await consuming

    counts = asyncio.run(run())
    assert (counts.read, counts.written, counts.dead_lettered) == (4, 3, 1)
    answers = streams.answers()
    assert sorted(answers) == sorted(ids[:3])
    expected = iris_logreg.predict(np.array(rows)).tolist()
    assert [answers[i]["predictions"][0] for i in ids[:3]] == expected
    (dead,) = streams.entries(streams.dead)
    assert dead["source_id"] == ids[3]
    assert streams.pending("modelport-iris") == 0
