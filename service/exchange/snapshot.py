"""Exports are taken as a snapshot, then streamed.

A study's export is written, in one read transaction, into a spooled temporary file (memory up
to SPOOL_BYTES, disk beyond) while its SHA-256 and length are counted; the transaction and its
connection end before the first byte is sent. The client then reads the file at its own pace:
a slow reader costs a file handle, never a pooled connection that every other request needs.

Because the whole body exists before the status line, a failure while reading the database is
a problem+json error (503, 404), never a 200 cut short; and the response carries
`Content-Length` and `Repr-Digest: sha-256=:…:` (RFC 9530) so that a client can verify that what
it received is complete and intact.

Builds are bounded per process (`EXPORT_BUILDS`): beyond that an export is refused at once with
429 and `Retry-After`, so exports cannot take every connection of the pool between them."""

import asyncio
import base64
import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

from service.errors import DomainError

SPOOL_BYTES = 8 * 1024 * 1024
READ_BYTES = 256 * 1024


class ExportsBusy(DomainError):
    status = 429
    slug = "exports-busy"
    title = "Every export slot of this process is building an export"
    headers = {"Retry-After": "10"}


@dataclass
class Snapshot:
    file: IO[bytes]
    size: int
    sha256: bytes

    def headers(self) -> dict[str, str]:
        return {
            "Content-Length": str(self.size),
            "Repr-Digest": f"sha-256=:{base64.b64encode(self.sha256).decode()}:",
        }

    async def chunks(self) -> AsyncIterator[bytes]:
        """The snapshot's bytes; the file is closed when the client has read it or gone away."""
        try:
            while chunk := self.file.read(READ_BYTES):
                yield chunk
        finally:
            self.file.close()


async def take(content: AsyncIterator[bytes]) -> Snapshot:
    """Write `content` (an export generator, which holds its own read transaction) to a spooled
    file: when this returns, the generator, its session and its connection are finished."""
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by chunks()
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in content:
            file.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            await asyncio.sleep(0)  # a large export yields the loop between batches
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return Snapshot(file, size, digest.digest())


class ExportSlots:
    """At most `limit` exports build at once in this process; the next is refused (429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.building = 0

    def __enter__(self) -> None:
        if self.building >= self.limit:
            raise ExportsBusy(f"{self.building} exports are being built by this process; retry shortly")
        self.building += 1

    def __exit__(self, *exc: object) -> None:
        self.building -= 1
