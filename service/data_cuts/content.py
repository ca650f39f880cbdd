"""The frozen content of a cut: one JSON document holding each study's export document
(service.exchange.export_json) as `GET /studies/{id}/export` gives it, built like an export
(a bounded number at once per process, into a spooled file, each study in one consistent read
transaction) and compressed off the event loop."""

import zlib
from collections.abc import AsyncIterator, Callable
from typing import IO, Any
from uuid import UUID

import anyio.to_thread
import msgspec

from service.exchange import export_json, snapshot

FORMAT = {"format": "leukemia-registry/data-cut", "format_version": 1}
READ_BYTES = 1024 * 1024


async def _document(
    open_session: Callable[[], Any], label: str, study_ids: list[UUID]
) -> AsyncIterator[bytes]:
    yield msgspec.json.encode({**FORMAT, "label": label})[:-1] + b',"studies":['
    for n, study_id in enumerate(study_ids):
        if n:
            yield b","
        async for chunk in export_json.stream_json(open_session, study_id):
            yield chunk
    yield b"]}"


def _compress(file: IO[bytes]) -> bytes:
    compressor = zlib.compressobj(6)
    parts = []
    while chunk := file.read(READ_BYTES):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.flush())
    file.close()
    return b"".join(parts)


async def build(open_session: Callable[[], Any], label: str, study_ids: list[UUID]) -> tuple[bytes, int, str]:
    """(compressed content, its length uncompressed, its SHA-256 in hex)."""
    taken = await snapshot.take(_document(open_session, label, study_ids))
    compressed = await anyio.to_thread.run_sync(_compress, taken.file)
    return compressed, taken.size, taken.sha256.hex()


async def chunks(compressed: bytes) -> AsyncIterator[bytes]:
    decompressor = zlib.decompressobj()
    for start in range(0, len(compressed), READ_BYTES):
        yield decompressor.decompress(compressed[start : start + READ_BYTES])
    yield decompressor.flush()
