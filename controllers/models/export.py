"""Export the observed models as Models documents (`aios export Models`).

One document per listed directory: every .gguf file directly in it, named by
its file name without `.gguf`, with `source: file:<path>` (the file itself),
its sha256 and its path. Applying the export to the same machine plans
nothing (each file has the declared sha256). Files whose name is not a valid
model name, and names already exported from another directory, are left
out. Runtime settings are not observable and keep their defaults. Used by
controllers.models.controller.
"""

from __future__ import annotations

import re
from typing import Any

from controllers.models.state import ModelsState, parent_of

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
NAME = "exported"


def export(state: ModelsState) -> list[dict[str, Any]]:
    documents = []
    names: set[str] = set()
    for number, directory in enumerate(state.directories, start=1):
        models = []
        for found in state.files:
            name = found.path.rsplit("/", 1)[-1].removesuffix(".gguf")
            if parent_of(found.path) != directory or not found.path.endswith(".gguf"):
                continue
            if not _NAME.match(name) or name in names:
                continue
            names.add(name)
            models.append(
                {
                    "name": name,
                    "source": f"file:{found.path}",
                    "sha256": found.sha256,
                    "path": found.path,
                }
            )
        if models:
            documents.append(
                {
                    "apiVersion": "aios.dev/v1",
                    "kind": "Models",
                    "metadata": {"name": NAME if number == 1 else f"{NAME}-{number}"},
                    "spec": {"directory": directory, "models": models},
                }
            )
    return documents
