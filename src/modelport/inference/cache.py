"""Response cache, opt-in per model: the same input to the same version gets the stored answer.

The key is the model version plus the canonical bytes of the conformed input (names, dtypes,
shapes, values), so a moved alias can never be answered from the old version's entries: the
new version has different keys. In memory by default (LRU bounded in bytes); Redis when
``MODELPORT_CACHE_URL`` is set, shared by every replica, with a TTL.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np
import orjson

from modelport.config import Settings
from modelport.inference.breaker import Breaker
from modelport.registry import VersionRecord
from modelport.runtimes.batch import Batch, Outputs

log = logging.getLogger("modelport.inference")


class ResponseCache(Protocol):
    async def get(self, key: bytes) -> Outputs | None: ...

    async def put(self, key: bytes, outputs: Outputs) -> None: ...

    async def close(self) -> None: ...


def cache_key(record: VersionRecord, batch: Batch) -> bytes:
    """A digest of the version and the exact input; equal inputs give equal keys.

    The artifact hashes are part of it, so two registries sharing one Redis never mix up
    their ``iris/1``.
    """
    digest = hashlib.blake2b(f"{record.name}/{record.version}".encode(), digest_size=20)
    for file_hash in sorted(record.files.values()):
        digest.update(file_hash.encode())
    for name, array in batch.columns.items():
        digest.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        if array.dtype.kind == "O":
            digest.update(orjson.dumps(array.tolist()))
        else:
            digest.update(np.ascontiguousarray(array).tobytes())
    return b"modelport:cache:" + digest.hexdigest().encode()


class MemoryCache:
    """Least-recently-used entries kept under ``max_bytes`` of array data."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: OrderedDict[bytes, tuple[Outputs, int]] = OrderedDict()
        self._max_bytes = max_bytes
        self._bytes = 0

    async def get(self, key: bytes) -> Outputs | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    async def put(self, key: bytes, outputs: Outputs) -> None:
        size = sum(_nbytes(a) for a in outputs.values())
        if size > self._max_bytes or key in self._entries:
            return
        # copies: the arrays are slices of a merged batch we must not keep alive
        self._entries[key] = ({name: a.copy() for name, a in outputs.items()}, size)
        self._bytes += size
        while self._bytes > self._max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    """Entries in Redis with a TTL; a Redis outage degrades to cache misses, never to errors.

    Lookups are worth microseconds, so the socket timeouts are short, and after a failure
    the breaker skips Redis for ``cooldown_s``: a hanging Redis must not add a timeout to
    every request, nor a refusing one two log lines per request.
    """

    def __init__(self, url: str, ttl_s: int, cooldown_s: float = 5.0) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(url, socket_timeout=0.1, socket_connect_timeout=0.2)
        self._ttl_s = ttl_s
        self._breaker = Breaker("response cache (Redis)", cooldown_s, log)

    async def get(self, key: bytes) -> Outputs | None:
        if not self._breaker.allow():
            return None
        try:
            raw = await self._client.get(key)
        except Exception as exc:  # redis.RedisError and socket errors alike
            self._breaker.failed(exc)
            return None
        self._breaker.succeeded()
        return decode_outputs(raw) if isinstance(raw, bytes) else None

    async def put(self, key: bytes, outputs: Outputs) -> None:
        if not self._breaker.allow():
            return
        try:
            await self._client.set(key, encode_outputs(outputs), ex=self._ttl_s)
        except Exception as exc:
            self._breaker.failed(exc)
            return
        self._breaker.succeeded()

    async def close(self) -> None:
        await self._client.aclose()


def create_cache(settings: Settings) -> ResponseCache:
    if settings.cache_url:
        return RedisCache(settings.cache_url.get_secret_value(), settings.cache_ttl_s)
    return MemoryCache(settings.cache_max_bytes)


def encode_outputs(outputs: Outputs) -> bytes:
    """Arrays as a JSON header (names, dtypes, shapes) followed by their raw bytes."""
    header: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, array in outputs.items():
        if array.dtype.kind == "O":
            data = orjson.dumps(array.tolist())
            header.append({"name": name, "dtype": "json", "shape": list(array.shape)})
        else:
            data = np.ascontiguousarray(array).tobytes()
            header.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape)})
        header[-1]["size"] = len(data)
        chunks.append(data)
    head = orjson.dumps(header)
    return len(head).to_bytes(4, "little") + head + b"".join(chunks)


def decode_outputs(raw: bytes) -> Outputs:
    size = int.from_bytes(raw[:4], "little")
    offset = 4 + size
    outputs: Outputs = {}
    for entry in orjson.loads(raw[4:offset]):
        data = raw[offset : offset + entry["size"]]
        offset += entry["size"]
        if entry["dtype"] == "json":
            outputs[entry["name"]] = np.array(orjson.loads(data), dtype=object)
        else:
            array = np.frombuffer(data, dtype=np.dtype(entry["dtype"]))
            outputs[entry["name"]] = array.reshape(entry["shape"])
    return outputs


def _nbytes(array: np.ndarray) -> int:
    return int(array.nbytes) if array.dtype.kind != "O" else 64 * int(array.size)
