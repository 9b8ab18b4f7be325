#!/usr/bin/env python3
"""Generate the Python gRPC stubs in contract/_gen from proto/aios/*.proto.

Run by developers after editing a .proto (`python scripts/gen_protos.py`) and by
tests/unit/test_proto_freshness.py (`--check`), which fails when the committed
stubs differ from what this script produces. Uses grpcio-tools' bundled protoc
(pinned exactly in the dev extra, so output is reproducible) and mypy-protobuf
for .pyi files. Imports between generated modules are rewritten to relative
ones so the stubs live inside the reconciler package, not as top-level modules.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto" / "aios"
OUT_DIR = ROOT / "contract" / "_gen"
INIT_TEXT = '"""Generated gRPC stubs; do not edit. Regenerate with scripts/gen_protos.py."""\n'

_IMPORT_RE = re.compile(r"^import (\w+_pb2(?:_grpc)?) as (\w+)$", re.MULTILINE)
_FROM_IMPORT_RE = re.compile(r"^import (\w+_pb2)$", re.MULTILINE)


def _rewrite_imports(text: str) -> str:
    """Make `import x_pb2 as y` into `from . import x_pb2 as y`."""
    text = _IMPORT_RE.sub(r"from . import \1 as \2", text)
    return _FROM_IMPORT_RE.sub(r"from . import \1", text)


def generate(dest: Path) -> None:
    """Run protoc for every .proto file, writing rewritten stubs into dest."""
    from grpc_tools import protoc  # type: ignore[import-untyped]  # dev dependency, no stubs

    protos = sorted(p.name for p in PROTO_DIR.glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    bindir = Path(sys.executable).parent
    plugins = [
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
    ]
    with tempfile.TemporaryDirectory() as raw:
        args = [
            "protoc",
            *plugins,
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--python_out={raw}",
            f"--grpc_python_out={raw}",
            f"--mypy_out={raw}",
            f"--mypy_grpc_out={raw}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        dest.mkdir(parents=True, exist_ok=True)
        for src in sorted(Path(raw).iterdir()):
            text = src.read_text(encoding="utf-8")
            (dest / src.name).write_text(_rewrite_imports(text), encoding="utf-8")
    (dest / "__init__.py").write_text(INIT_TEXT, encoding="utf-8")
    (dest / "py.typed").write_text("", encoding="utf-8")


def differences(a: Path, b: Path) -> list[str]:
    """Names of files that differ between two generated trees."""
    names = {p.name for p in a.iterdir()} | {p.name for p in b.iterdir()}
    out = []
    for name in sorted(names):
        pa, pb = a / name, b / name
        if name == "__pycache__":
            continue
        if not pa.exists() or not pb.exists() or pa.read_bytes() != pb.read_bytes():
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if contract/_gen is stale")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "_gen"
            generate(fresh)
            stale = differences(fresh, OUT_DIR) if OUT_DIR.exists() else ["(missing)"]
        if stale:
            print("stale generated stubs: " + ", ".join(stale), file=sys.stderr)
            print("run: python scripts/gen_protos.py", file=sys.stderr)
            return 1
        return 0
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    generate(OUT_DIR)
    print(f"generated {len(list(OUT_DIR.glob('*.py*')))} files in {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
