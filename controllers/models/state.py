"""The observed (or predicted) models state: the GGUF files model.list reported.

Frozen pydantic models, built by controllers.models.observe from model.list
and by controllers.models.effects when it predicts a plan's effect. Files
are sorted by path; `directories` says which directories were listed whole
(the others are only the paths the specs name). `fetched_from` exists only
in predictions: the URL a planned fetch downloads from (a file cannot say
where it came from). Must not import specs (the effect model uses it).
"""

from __future__ import annotations

from reconciler.sdk.plan import Frozen


class ModelFile(Frozen):
    path: str
    size: int
    sha256: str
    gguf_version: int | None = None  # None: the header is not GGUF (or not known yet)
    fetched_from: str | None = None  # predictions only


class ModelsState(Frozen):
    directories: tuple[str, ...] = ()
    files: tuple[ModelFile, ...] = ()

    def file(self, path: str) -> ModelFile | None:
        return next((f for f in self.files if f.path == path), None)


def source_path(url: str) -> str | None:
    """The target path a `file:` URL names (None for http/https)."""
    if not url.startswith("file:"):
        return None
    return "/" + url[len("file:") :].lstrip("/")


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"
