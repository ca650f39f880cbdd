"""Taking and reading the frozen content of a cut (its rows: service.data_cuts.rows): built like
an export (a bounded number at once per process, into a spooled file, in one consistent read
transaction) and compressed off the event loop."""

import zlib
from collections.abc import AsyncIterator, Callable
from typing import IO, Any
from uuid import UUID

import anyio.to_thread

from service.data_cuts import rows
from service.exchange import snapshot

READ_BYTES = 1024 * 1024


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
    taken = await snapshot.take(rows.stream(open_session, label, study_ids))
    compressed = await anyio.to_thread.run_sync(_compress, taken.file)
    return compressed, taken.size, taken.sha256.hex()


async def chunks(compressed: bytes) -> AsyncIterator[bytes]:
    decompressor = zlib.decompressobj()
    for start in range(0, len(compressed), READ_BYTES):
        yield decompressor.decompress(compressed[start : start + READ_BYTES])
    yield decompressor.flush()


def decompressed(compressed: bytes) -> bytes:
    return zlib.decompress(compressed)
