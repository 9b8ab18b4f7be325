"""The `fs.*` tool catalogue as data: aiOS's 13 file tools (docs/aios-contract.md §3.4).

aiOS's names, input keys and output shapes, with closed object schemas that
are not tagged with a `$schema` dialect (as these tools have always been
advertised). Every output key is required. Paths are target paths under the
registry's --root: PATH refuses a relative path, a `..` component and NUL
(what registry.core.rootfs refuses at the moment of use, said as a schema);
LINK_TARGET is fs.symlink's link text. Each ToolSpec is made by
contract.tooldef.define. Read by registry.handlers.fs and
registry.handlers.fs_write (the handlers, one `spec` each) and
contract.catalogue (ALL).
"""

from __future__ import annotations

from contract.catalogue.parts import BOOL, INT, STR, TRUE
from contract.tooldef import JSON, ToolSpec, define, obj_schema

READ = ("fs_read",)
WRITE = ("fs_write",)

# An absolute target path without a '..' component or NUL (ctx.path's rules, as a schema).
PATH: JSON = {
    "type": "string",
    "pattern": r"^/(?!(?:[^\u0000]*/)?\.\.(?:/|$))[^\u0000]*$",
    "maxLength": 4095,
    "description": "Absolute target path under the registry's --root (no '..' component, no NUL).",
}
LINK_TARGET: JSON = {
    "type": "string",
    "pattern": r"^[^\u0000]+$",
    "maxLength": 4095,
    "description": "Link text: absolute (from the root) or relative (not climbing above it).",
}
_PATH_ONLY = obj_schema({"path": PATH}, ["path"])

# --- read-only ------------------------------------------------------------------

FS_READ = define(
    "fs.read",
    "Read a UTF-8 text file (a link is followed inside the root).",
    _PATH_ONLY,
    obj_schema({"content": STR, "size": INT}, ["content", "size"]),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=5000,
    capabilities=READ,
)
LIST_ENTRY = obj_schema(
    {
        "name": STR,
        "type": {"enum": ["file", "dir", "symlink"]},
        "size": INT,
        "modified": STR,
    },
    ["name", "type", "size", "modified"],
)
FS_LIST = define(
    "fs.list",
    "List a directory (lstat semantics; a link to a directory is followed inside the root).",
    _PATH_ONLY,
    obj_schema({"entries": {"type": "array", "items": LIST_ENTRY}}, ["entries"]),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=5000,
    capabilities=READ,
)
FS_STAT = define(
    "fs.stat",
    "Size, permissions and times of a path (lstat: links are not followed).",
    _PATH_ONLY,
    obj_schema(
        {
            "size": INT,
            "permissions": {"type": "string", "pattern": "^[0-7]{4}$"},
            "modified": STR,
            "accessed": STR,
            "is_dir": BOOL,
            "is_file": BOOL,
            "is_symlink": BOOL,
        },
        ["size", "permissions", "modified", "accessed", "is_dir", "is_file", "is_symlink"],
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=5000,
    capabilities=READ,
)
FS_SEARCH = define(
    "fs.search",
    "Find entries whose name matches a glob (*, ?, [abc], [!abc]) under a directory.",
    obj_schema(
        {"directory": PATH, "pattern": STR, "max_depth": {"type": "integer", "minimum": 0}},
        ["directory", "pattern"],
    ),
    obj_schema({"matches": {"type": "array", "items": STR}}, ["matches"]),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=30000,
    capabilities=READ,
)
FS_DISK_USAGE = define(
    "fs.disk_usage",
    "Size and use of the filesystem holding a path (statvfs).",
    _PATH_ONLY,
    obj_schema(
        {
            "total_bytes": INT,
            "used_bytes": INT,
            "available_bytes": INT,
            "usage_percent": {"type": "number"},
        },
        ["total_bytes", "used_bytes", "available_bytes", "usage_percent"],
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=5000,
    capabilities=READ,
)

# --- writes (all reversible but delete: the pipeline keeps a before-image) --------

FS_WRITE = define(
    "fs.write",
    "Write text to a file (creates parents; an existing file is kept as <path>.bak; "
    "a link is followed inside the root).",
    obj_schema({"path": PATH, "content": STR}, ["path", "content"]),
    obj_schema({"bytes_written": INT}, ["bytes_written"]),
    risk="medium",
    idempotent=False,
    reversible=True,
    timeout_ms=10000,
    capabilities=WRITE,
)
FS_DELETE = define(
    "fs.delete",
    "Delete a file, symlink or directory (`recursive` for non-empty ones); "
    "a link is removed, not followed.",
    obj_schema({"path": PATH, "recursive": BOOL}, ["path"]),
    obj_schema({"deleted": TRUE}, ["deleted"]),
    risk="high",
    idempotent=False,
    reversible=False,
    timeout_ms=10000,
    capabilities=WRITE,
)
FS_MKDIR = define(
    "fs.mkdir",
    "Create a directory (`recursive`: with parents, and no error if it exists).",
    obj_schema({"path": PATH, "recursive": BOOL}, ["path"]),
    obj_schema({"created": TRUE}, ["created"]),
    risk="low",
    idempotent=True,
    reversible=True,
    timeout_ms=5000,
    capabilities=WRITE,
)
FS_MOVE = define(
    "fs.move",
    "Move a file or directory (rename, else copy and delete); creates parents. "
    "A link is moved as a link.",
    obj_schema({"source": PATH, "destination": PATH}, ["source", "destination"]),
    obj_schema({"moved": TRUE}, ["moved"]),
    risk="medium",
    idempotent=False,
    reversible=True,
    timeout_ms=10000,
    capabilities=WRITE,
)
FS_COPY = define(
    "fs.copy",
    "Copy a file (with permission bits) or a directory tree; creates parents. "
    "Links are followed inside the root (those inside a tree are copied as links).",
    obj_schema({"source": PATH, "destination": PATH}, ["source", "destination"]),
    obj_schema({"copied": TRUE}, ["copied"]),
    risk="medium",
    idempotent=False,
    reversible=True,
    timeout_ms=30000,
    capabilities=WRITE,
)
FS_CHMOD = define(
    "fs.chmod",
    'Set permission bits (mode as an octal string, e.g. "0644"); follows links inside the root.',
    obj_schema(
        {"path": PATH, "mode": {"type": "string", "pattern": "^(0o)?[0-7]{1,4}$"}},
        ["path", "mode"],
    ),
    obj_schema({"changed": TRUE}, ["changed"]),
    risk="high",
    idempotent=True,
    reversible=True,
    timeout_ms=5000,
    capabilities=WRITE,
)
FS_CHOWN = define(
    "fs.chown",
    "Set numeric owner and group; follows links inside the root.",
    obj_schema(
        {
            "path": PATH,
            "uid": {"type": "integer", "minimum": 0},
            "gid": {"type": "integer", "minimum": 0},
        },
        ["path", "uid", "gid"],
    ),
    obj_schema({"changed": TRUE}, ["changed"]),
    risk="critical",
    idempotent=True,
    reversible=True,
    timeout_ms=5000,
    capabilities=WRITE,
)
FS_SYMLINK = define(
    "fs.symlink",
    "Create symlink `link` -> `target` (target stored verbatim: absolute means from the "
    "root, relative may not climb above it); creates parents.",
    obj_schema({"target": LINK_TARGET, "link": PATH}, ["target", "link"]),
    obj_schema({"created": TRUE}, ["created"]),
    risk="medium",
    idempotent=False,
    reversible=True,
    timeout_ms=5000,
    capabilities=WRITE,
)

ALL: tuple[ToolSpec, ...] = (
    FS_READ,
    FS_LIST,
    FS_STAT,
    FS_SEARCH,
    FS_DISK_USAGE,
    FS_WRITE,
    FS_DELETE,
    FS_MKDIR,
    FS_MOVE,
    FS_COPY,
    FS_CHMOD,
    FS_CHOWN,
    FS_SYMLINK,
)
