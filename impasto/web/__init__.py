"""The local web studio: ``impasto serve`` (FastAPI app, a job queue, a static page).

Modules: :mod:`.settings` (limits), :mod:`.fields` (form fields derived from
:class:`impasto.Options`), :mod:`.media` (uploads, examples, PNG encoding), :mod:`.job` (a job's
record), :mod:`.board` (the jobs and their listeners), :mod:`.jobs` (the queue and its worker threads),
:mod:`.store` and :mod:`.records` (the work folder's lock and jobs database), :mod:`.prune` (which
finished jobs go), :mod:`.forms` (reading a form, spooling to the work folder), :mod:`.serving`
(uvicorn: connection limits, shutdown in order), :mod:`.submit` (checking a new job),
:mod:`.models` (JSON shapes), :mod:`.api` (HTTP routes), :mod:`.server` (app factory, ``serve``) and
:mod:`.testing` (a stand-in runner the caller paces).
The page is ``static/`` (plain HTML, CSS and ES modules, no build step).

FastAPI, uvicorn and python-multipart are the optional ``web`` extra: without them, importing
this package raises an :class:`~impasto.errors.ImpastoError` that says how to install them.
"""

from __future__ import annotations

import importlib.util

from ..errors import ImpastoError

_NEEDED = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}
_missing = [dist for module, dist in _NEEDED.items() if importlib.util.find_spec(module) is None]
if _missing:
    raise ImpastoError(f"the web studio needs {', '.join(_missing)}: pip install 'impasto[web]'")

from .settings import StudioSettings  # noqa: E402

__all__ = ["StudioSettings"]
