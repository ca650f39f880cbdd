"""A cut's release package: an RO-Crate zip holding the frozen content (`data-cut.json`, whose
SHA-256 is the cut's), each study's export on the cut as its JSON document and its CSV files
(`export/`), the analyses run on the cut with their answers (`analyses/`), and the crate's
metadata (service.data_cuts.crate). Every member is dated by the cut's time, so the same cut
with the same analyses gives the same bytes."""

import hashlib
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from service.data_cuts import crate
from service.data_cuts.crate import PackedFile
from service.db import models
from service.exchange import export_csv, export_json, snapshot
from service.exchange.export_csv import ZipSink, zip_member

SUFFIXES = {
    "application/json": "json",
    "image/svg+xml": "svg",
    "image/png": "png",
    "text/csv": "csv",
    "application/zip": "zip",
}
READ_BYTES = 1024 * 1024


class _Member:
    """Writes one member of the archive, counting its size and SHA-256."""

    def __init__(self, archive: zipfile.ZipFile, path: str) -> None:
        self.path = path
        self.out = archive.open(zip_member(path), mode="w", force_zip64=True)
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.out.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)

    def close(self, name: str, media_type: str, about: str | None = None) -> PackedFile:
        self.out.close()
        return PackedFile(self.path, name, media_type, self.size, self.digest.hexdigest(), about)


async def stream(
    cut: models.DataCut,
    open_session: Callable[[], Any],
    studies: list[models.Study],
    analyses: list[models.DataCutAnalysis],
    license_url: str,
    version: str,
    registry_url: str,
) -> AsyncIterator[bytes]:
    """The zip, written as it is made (`open_session` reads the cut's frozen database)."""
    sink = ZipSink()
    files: list[PackedFile] = []
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        member = _Member(archive, "data-cut.json")
        decompressor = zlib.decompressobj()
        for start in range(0, len(cut.content), READ_BYTES):
            member.write(decompressor.decompress(cut.content[start : start + READ_BYTES]))
            yield sink.take()
        member.write(decompressor.flush())
        files.append(
            member.close("The data cut's frozen content: every row of its studies", "application/json")
        )
        yield sink.take()

        for study in studies:
            member = _Member(archive, f"export/study-{study.id}.json")
            async for chunk in export_json.stream_json(open_session, study.id):
                member.write(chunk)
                yield sink.take()
            files.append(
                member.close(f"{study.title}: the study's JSON document", "application/json", str(study.id))
            )
            # The CSV export's files, each a member of its own.
            taken = await snapshot.take(export_csv.stream_zip(open_session, study.id))
            with taken.file, zipfile.ZipFile(taken.file) as csv_files:
                for info in csv_files.infolist():
                    member = _Member(archive, f"export/study-{study.id}/{info.filename}")
                    with csv_files.open(info) as source:
                        while chunk := source.read(READ_BYTES):
                            member.write(chunk)
                    files.append(member.close(f"{study.title}: {info.filename}", "text/csv", str(study.id)))
                    yield sink.take()

        answers = []
        for n, analysis in enumerate(analyses, start=1):
            suffix = SUFFIXES.get(analysis.media_type.split(";")[0], "bin")
            member = _Member(archive, f"analyses/{n:03d}-{analysis.operation}.{suffix}")
            member.write(zlib.decompress(analysis.content))
            answers.append((analysis, member.close(f"{analysis.operation} on the cut", analysis.media_type)))
            yield sink.take()

        document = crate.metadata(cut, studies, files, answers, license_url, version, registry_url)
        with archive.open(zip_member("ro-crate-metadata.json"), mode="w") as out:
            out.write(msgspec.json.format(msgspec.json.encode(document), indent=2))
    yield sink.take()
