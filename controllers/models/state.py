"""The observed (or predicted) models state: GGUF files (model.list) and the AI runtime's models.

Frozen pydantic models, built by controllers.models.observe from model.list
and model.loaded, and by controllers.models.effects when it predicts a
plan's effect. Files are sorted by path; `directories` says which
directories were listed whole (the others are only the paths the specs
name). `fetched_from` exists only in predictions: the URL a planned fetch
downloads from (a file cannot say where it came from).

`runtime` is None when model.loaded was not asked (no declared model has
`load: always` and aios loaded nothing: such specs need no runtime);
otherwise the runtime's address and the models it holds, by name, with
what it says about each (fields it cannot know are None: aiOS's runtime
reports neither parameters nor digests). `LoadedModel.stale` exists only in
predictions: the file under a model that stayed loaded was replaced or
removed, so the runtime still serves the previous weights (the planner
unloads before such a fetch; the prediction of a plan that does not, keeps
the model stale, and the verifier refuses it). Must not import specs (the
effect model uses it).
"""

from __future__ import annotations

from reconciler.sdk.plan import Frozen

READY = "ready"


class ModelFile(Frozen):
    path: str
    size: int
    sha256: str
    gguf_version: int | None = None  # None: the header is not GGUF (or not known yet)
    fetched_from: str | None = None  # predictions only


class LoadedModel(Frozen):
    """One model the AI runtime knows (an entry of model.loaded)."""

    name: str
    status: str  # ready | loading | restarting: <why> | error: <why>
    path: str | None = None  # the target path it was loaded from
    port: int | None = None  # llama-server's port on 127.0.0.1
    context_length: int | None = None
    threads: int | None = None
    gpu_layers: int | None = None
    sha256: str | None = None  # of the file as loaded
    restarts: int | None = None
    last_error: str | None = None
    on_demand: bool | None = None  # loaded by the runtime on a first Infer
    stale: bool = False  # predictions only: its file changed while it stayed loaded

    @property
    def endpoint(self) -> str | None:
        return f"127.0.0.1:{self.port}" if self.port else None

    @property
    def health(self) -> str:
        """`healthy` when ready; else the runtime's status, with the restarts and last error."""
        if self.status == READY:
            return "healthy"
        extra = [f"{self.restarts} restart(s)"] if self.restarts else []
        if self.last_error and self.last_error not in self.status:
            extra.append(f"last error: {self.last_error}")
        return self.status + (f" ({'; '.join(extra)})" if extra else "")


class Runtime(Frozen):
    address: str  # the runtime model.loaded asked ("" in a prediction without one)
    models: tuple[LoadedModel, ...] = ()


class ModelsState(Frozen):
    directories: tuple[str, ...] = ()
    files: tuple[ModelFile, ...] = ()
    runtime: Runtime | None = None  # None: model.loaded was not asked

    def file(self, path: str) -> ModelFile | None:
        return next((f for f in self.files if f.path == path), None)

    def loaded(self, name: str) -> LoadedModel | None:
        """The runtime's model `name` (None: not loaded, or the runtime was not asked)."""
        models = self.runtime.models if self.runtime else ()
        return next((m for m in models if m.name == name), None)


def source_path(url: str) -> str | None:
    """The target path a `file:` URL names (None for http/https)."""
    if not url.startswith("file:"):
        return None
    return "/" + url[len("file:") :].lstrip("/")


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"
