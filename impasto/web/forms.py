"""Reading a submitted form, with uploads over 1 MB spooled to the work folder's disk, not ``$TMPDIR``.

Starlette spools each uploaded file to a ``SpooledTemporaryFile`` in the system's temporary folder
once it passes 1 MB: a full ``/tmp`` made any larger upload a 500 with a traceback, whatever room
the work folder had. Here the spool files are made in the work folder (unnamed files: none outlives
the process, whatever kills it), and a write that fails there is a :class:`StorageFull` (507) with
one line naming the upload. The rest of the refused request's body is read and dropped, so that the
client hears the answer instead of a reset connection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from tempfile import SpooledTemporaryFile

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from .media import StorageFull, safe_label

__all__ = ["read_form"]


class _Body:
    """The request's body as chunks, knowing whether all of it has arrived."""

    def __init__(self, request: Request) -> None:
        self.receive = request.receive
        self.complete = False

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        while not self.complete:
            message = await self.receive()
            if message["type"] != "http.request":
                raise ClientDisconnect()
            self.complete = not message.get("more_body", False)
            if message.get("body"):
                yield message["body"]

    async def drain(self) -> None:
        """Read what is left (the guard's deadline bounds it), dropping it."""
        async for _ in self.chunks():
            pass


class _Parser(MultiPartParser):
    """Starlette's multipart parser with its spool files in ``spool_dir``."""

    def __init__(self, request: Request, body: _Body, spool_dir: Path, roles: Mapping[str, str], **limits: int) -> None:
        super().__init__(request.headers, body.chunks(), **limits)
        self.spool_dir = spool_dir
        self.roles = roles

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        upload = self._current_part.file
        if upload is not None:  # a file part: the same spool, in the work folder
            spool = SpooledTemporaryFile(max_size=self.spool_max_size, dir=str(self.spool_dir))  # noqa: SIM115
            self._files_to_close_on_error[-1].close()
            self._files_to_close_on_error[-1] = spool
            upload.file = spool  # type: ignore[assignment]  # as Starlette does

    def current_upload(self) -> str:
        """The upload being read, as messages name it: ``content image 'photo.png'``."""
        upload = self._current_part.file
        role = self.roles.get(self._current_part.field_name, "upload")
        return f"{role} '{safe_label(upload.filename if upload is not None else None, role)}'"


async def read_form(
    request: Request, spool_dir: Path, roles: Mapping[str, str], *, max_files: int, max_fields: int, max_part_size: int
) -> FormData:
    """The request's form (multipart or urlencoded); raises StorageFull if an upload cannot be spooled
    (naming it by its field's role in ``roles`` and its file name)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await request.form(max_files=max_files, max_fields=max_fields, max_part_size=max_part_size)
    body = _Body(request)
    limits = {"max_files": max_files, "max_fields": max_fields, "max_part_size": max_part_size}
    parser = _Parser(request, body, spool_dir, roles, **limits)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(400, exc.message) from None
    except OSError as exc:  # the spool file's write: a full disk, mostly
        await body.drain()
        raise StorageFull(f"{parser.current_upload()}: the studio cannot store it ({exc.strerror or exc})") from None
