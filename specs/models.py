"""Kind Models: local GGUF models, where they come from and how they load.

A model has a name (the runtime's model name; aiOS routes by substrings of it,
so keep names like `tinyllama-1.1b` intact), a source (https, http or file),
a sha256 (required for remote sources), a path (default
`<directory>/<name>.gguf`), the intelligence layer it serves and whether the
runtime loads it always or on demand. Deleting weights is destructive and
needs `force: true`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from contract.vocab.gguf import CONTEXT_LENGTH, GPU_LAYERS, MODEL_NAME_PATTERN, THREADS
from specs.base import Claim, Resource, ResourceSpec, SpecModel
from specs.types import AbsPath, FieldError, ItemState, Sha256, Url

DEFAULT_MODEL_DIR = "/var/lib/aios/models"
ModelName = Annotated[str, Field(pattern=f"^{MODEL_NAME_PATTERN}$")]


def _gguf_path(value: str) -> str:
    if not value.endswith(".gguf"):
        raise ValueError(f"a model path must end in .gguf, not {value.rsplit('/', 1)[-1]!r}")
    return value


class Model(SpecModel):
    name: ModelName
    source: Url | None = None
    sha256: Sha256 | None = None
    path: Annotated[AbsPath, AfterValidator(_gguf_path)] | None = Field(
        default=None, description="Default: <directory>/<name>.gguf"
    )
    layer: Literal["operational", "tactical", "strategic"] = "operational"
    load: Literal["always", "on_demand"] = "on_demand"
    context_length: Annotated[int, Field(ge=CONTEXT_LENGTH[0], le=CONTEXT_LENGTH[1])] = 2048
    threads: Annotated[int, Field(ge=THREADS[0], le=THREADS[1])] = 2
    gpu_layers: Annotated[int, Field(ge=GPU_LAYERS[0], le=GPU_LAYERS[1])] = 0
    state: ItemState = "present"
    force: bool = Field(default=False, description="Allow deleting the model's weights.")

    @model_validator(mode="after")
    def _source(self) -> Model:
        if self.state == "present" and self.source is None:
            raise FieldError(("source",), "a present model needs a source")
        if self.source and self.source.startswith(("http://", "https://")) and not self.sha256:
            raise FieldError(
                ("sha256",), "a model from http(s) needs sha256 so the download can be verified"
            )
        return self


class ModelsSpec(ResourceSpec):
    directory: AbsPath = DEFAULT_MODEL_DIR
    models: tuple[Model, ...] = ()

    def path_of(self, model: Model) -> str:
        return model.path or f"{self.directory.rstrip('/')}/{model.name}.gguf"


class Models(Resource):
    """GGUF models on the target and how the AI runtime loads them."""

    KIND = "Models"
    kind: Literal["Models"]
    spec: ModelsSpec

    def claims(self) -> Iterator[Claim]:
        for i, model in enumerate(self.spec.models):
            yield Claim(key=f"model:{model.name}", loc=("spec", "models", i, "name"))
            yield Claim(
                key=f"model-path:{self.spec.path_of(model)}",
                loc=("spec", "models", i, "path" if model.path else "name"),
            )
