"""The registry with its artifacts in S3: a real S3 endpoint on loopback (moto server)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelport.config import Settings
from modelport.errors import ArtifactIntegrityError
from modelport.registry import PreparedModel, Registry, prepare_object
from modelport.sdk import load_model, log_model
from modelport.store.artifacts import sha256_of

pytestmark = pytest.mark.s3

IrisData = tuple[np.ndarray, np.ndarray]
PREFIX = "models"


@pytest.fixture
def s3_settings(
    bucket: tuple[Any, str], s3_endpoint: str, make_settings: Callable[..., Settings]
) -> Settings:
    return make_settings(artifact_uri=f"s3://{bucket[1]}/{PREFIX}", s3_endpoint_url=s3_endpoint)


@pytest.fixture
def registry(s3_settings: Settings) -> Iterator[Registry]:
    reg = Registry.from_settings(s3_settings)
    yield reg
    reg.close()


@pytest.fixture
def prepared(iris_logreg: LogisticRegression, iris_data: IrisData) -> Iterator[PreparedModel]:
    with prepare_object(iris_logreg, iris_data[0][:10]) as st:
        yield st


def objects(bucket: tuple[Any, str]) -> dict[str, bytes]:
    client, name = bucket
    listing = client.list_objects_v2(Bucket=name).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=name, Key=o["Key"])["Body"].read() for o in listing}


def test_register_and_load_through_s3(
    registry: Registry,
    s3_settings: Settings,
    bucket: tuple[Any, str],
    prepared: PreparedModel,
    iris_logreg: LogisticRegression,
    iris_data: IrisData,
) -> None:
    record = registry.register("iris", prepared)
    assert record.artifact_uri == f"s3://{bucket[1]}/{PREFIX}/{record.artifact_key}"
    stored = objects(bucket)
    assert set(stored) == {f"{PREFIX}/{record.artifact_key}/{f}" for f in record.files}
    assert not (s3_settings.home / "artifacts").exists()  # nothing went to a local folder

    runtime = registry.load(registry.resolve("iris"))
    X = iris_data[0]
    outputs = runtime.predict(registry.get_version("iris", 1).signature.conform({"input": X}))
    np.testing.assert_array_equal(outputs["label"], iris_logreg.predict(X))
    np.testing.assert_allclose(outputs["probabilities"], iris_logreg.predict_proba(X))

    cached = s3_settings.cache_dir / record.artifact_key
    for relative, digest in record.files.items():
        assert sha256_of(cached / relative) == digest
        assert (cached / relative).read_bytes() == stored[
            f"{PREFIX}/{record.artifact_key}/{relative}"
        ]
    assert not list(cached.rglob("*.part"))


def test_sdk_round_trip_on_s3(
    s3_settings: Settings, iris_logreg: LogisticRegression, iris_data: IrisData
) -> None:
    X = iris_data[0]
    assert log_model(iris_logreg, "iris", X[:5], settings=s3_settings).version == 1
    loaded = load_model("models:/iris/1", settings=s3_settings)
    np.testing.assert_array_equal(loaded.predict(X), iris_logreg.predict(X))


def test_tampered_object_in_s3_is_refused(
    registry: Registry, s3_settings: Settings, bucket: tuple[Any, str], prepared: PreparedModel
) -> None:
    client, name = bucket
    record = registry.register("iris", prepared)
    key = f"{PREFIX}/{record.artifact_key}/model.skops"
    data = bytearray(client.get_object(Bucket=name, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    client.put_object(Bucket=name, Key=key, Body=bytes(data))
    with pytest.raises(ArtifactIntegrityError, match=r"model\.skops"):
        registry.load(record)
    # the bad bytes are not trusted on the next try either, nor by another registry
    with pytest.raises(ArtifactIntegrityError):
        registry.load(record)
    with pytest.raises(ArtifactIntegrityError):
        load_model("iris/1", settings=s3_settings)

    client.delete_object(Bucket=name, Key=key)
    with pytest.raises(ArtifactIntegrityError, match="cannot be read"):
        registry.load(record)


def test_cached_copy_is_reverified_and_repaired(
    registry: Registry, s3_settings: Settings, prepared: PreparedModel
) -> None:
    record = registry.register("iris", prepared)
    registry.load(record)
    cached = s3_settings.cache_dir / record.artifact_key / "model.skops"
    original = cached.read_bytes()
    cached.write_bytes(original[:-1] + bytes([original[-1] ^ 0x01]))  # rot in the cache
    registry.load(record)  # the bad copy is noticed and fetched again from S3
    assert cached.read_bytes() == original
    cached.unlink()
    registry.load(record)
    assert cached.read_bytes() == original


def test_garbage_collection_on_s3(
    registry: Registry, s3_settings: Settings, bucket: tuple[Any, str], prepared: PreparedModel
) -> None:
    client, name = bucket
    kept = [registry.register("iris", prepared), registry.register("other", prepared)]
    doomed = registry.register("iris", prepared)
    registry.load(kept[0])
    registry.delete_version("iris", doomed.version)
    assert not any(k.startswith(f"{PREFIX}/{doomed.artifact_key}/") for k in objects(bucket))
    assert registry.collect_garbage(older_than=timedelta(0)) == []  # lists (and caches) keys

    # Left by a registration that died after uploading: written by another client, so this
    # process's cached listing of the bucket does not know about it.
    orphan = f"iris/{uuid.uuid4().hex}"
    client.put_object(Bucket=name, Key=f"{PREFIX}/{orphan}/model.skops", Body=b"partial")
    foreign = [
        f"{PREFIX}/README.txt",
        f"{PREFIX}/iris/notes.txt",
        "elsewhere/iris/x.bin",
        f"{PREFIX}/iris/not-a-key/model.skops",
    ]
    for key in foreign:
        client.put_object(Bucket=name, Key=key, Body=b"not modelport's")
    before = objects(bucket)

    assert registry.collect_garbage() == []  # fresh uploads may still be in flight
    assert registry.collect_garbage(older_than=timedelta(0)) == [orphan]
    after = objects(bucket)
    assert set(before) - set(after) == {f"{PREFIX}/{orphan}/model.skops"}
    assert all(after[k] == before[k] for k in after)

    for record in kept:  # referenced versions are intact in S3, not just in the cache
        cache = s3_settings.cache_dir / record.artifact_key
        for path in sorted(cache.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        registry.load(record)
    assert Path(s3_settings.cache_dir / kept[0].artifact_key / "model.skops").is_file()
