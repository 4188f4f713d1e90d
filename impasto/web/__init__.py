"""The local web studio: ``impasto serve`` (FastAPI app, a job queue, a static page).

Modules: :mod:`.settings` (limits), :mod:`.fields` (form fields derived from
:class:`impasto.Options`), :mod:`.media` (uploads, examples, PNG encoding), :mod:`.jobs` (queue and
worker threads), :mod:`.api` (HTTP routes) and :mod:`.server` (app factory and ``serve``).
FastAPI and uvicorn are the optional ``web`` extra; importing this package needs neither.
"""

from __future__ import annotations

from .settings import StudioSettings

__all__ = ["StudioSettings"]
