"""Mount and unmount under the context's root, and read mounts back in spec form.

`current` reads what is mounted at a target (findmnt in the registry's mount
namespace) and describes its source as a spec would: a loop device becomes
its image path relative to the root, a bind mount its source directory,
tmpfs stays tmpfs. `resolve_source` turns LABEL=/UUID= into a path, looking
only at the `probe` candidates of the call (never at the host's block
devices: in a sandbox a label could match a host disk); /dev paths are
refused unless the root is "/". `check_options` refuses every option the
mount's type does not allow (contract.vocab.fsoptions: one option per item, no
comma, no path-valued key but the ones mapped); `mount_commands` builds the
mount(8) argv (image files get `-o loop`, overlay's layer directories are
mapped under the root); `wanted_options_present` compares options in the
normal form the storage controller uses too; `unmount` also detaches the loop
device the mount used. Used by registry.handlers.storage_mount and registry.handlers.storage.
"""

from __future__ import annotations

from pathlib import Path

from contract.tooldef import JSON
from contract.vocab import fsoptions
from registry.core.errors import ToolError
from registry.core.tool import ToolContext
from registry.drivers.storage import blockdev, optionpaths

PSEUDO = ("tmpfs", "none", "overlay")


def in_sandbox(ctx: ToolContext) -> bool:
    return ctx.root.resolve() != Path("/")


def target_form(ctx: ToolContext, host: str | Path) -> str | None:
    """'/srv/x' for '<root>/srv/x'; None when `host` is outside the root."""
    path = Path(host)
    root = ctx.root.resolve()
    if not path.is_relative_to(root):
        return None
    relative = path.relative_to(root).as_posix()
    return "/" if relative == "." else "/" + relative


def describe(ctx: ToolContext, entry: JSON, loops: dict[str, str]) -> JSON:
    """A findmnt entry in spec form: target relative to the root, image paths as sources,
    overlay layer directories relative to the root (as a spec and storage.mount name them)."""
    raw = entry["source"]
    source = raw
    if loops.get(raw):
        source = target_form(ctx, loops[raw]) or loops[raw]
    elif (bound := blockdev.bind_path(raw)) is not None:
        source = target_form(ctx, bound) or bound
    return {
        "target": target_form(ctx, entry["target"]) or entry["target"],
        "source": source,
        "device": raw,
        "fstype": entry["fstype"],
        "options": optionpaths.map_paths(
            entry["fstype"], entry["options"], lambda v: target_form(ctx, v) or v
        ),
    }


async def current(ctx: ToolContext, host_target: Path) -> JSON | None:
    """What is mounted at `host_target` (the topmost mount), in spec form, or None."""
    found = await blockdev.mounts(ctx, host_target)
    if not found:
        return None
    return describe(ctx, found[-1], await blockdev.loops(ctx))


async def resolve_source(ctx: ToolContext, source: str, probe: list[str]) -> str:
    """LABEL=/UUID= -> the matching probe candidate; other sources unchanged."""
    if not source.startswith(("LABEL=", "UUID=")):
        return source
    key, _, value = source.partition("=")
    for candidate in probe:
        found = await blockdev.probe(ctx, source_host(ctx, candidate))
        if found and found.get(key) == value:
            return candidate
    listed = ", ".join(probe) or "none given"
    raise ToolError(f"no filesystem with {source} among the probe candidates ({listed})")


def source_host(ctx: ToolContext, source: str) -> Path:
    """Host path of a device or image source; /dev only when the root is '/'."""
    if source.startswith("/dev/"):
        if in_sandbox(ctx):
            raise ToolError(
                f"refusing device {source}: under a scratch root only image files under the "
                "root are used (a /dev path would be a host device)"
            )
        return Path(source)
    return ctx.path(source)


def option_kind(source: str, fstype: str) -> str:
    """The allow-list a mount's options are checked against: what `mount_commands` mounts."""
    if fstype == "tmpfs" or source == "tmpfs":
        return "tmpfs"
    if fstype == "overlay" or source == "overlay":
        return "overlay"
    return fstype or "auto"


def check_options(kind: str, options: list[str]) -> list[str]:
    """`options` when a mount of `kind` may get every one, else ToolError naming the item."""
    for i, option in enumerate(options):
        problem = fsoptions.mount_option_problem(kind, option)
        if problem is not None:
            raise ToolError(f"options[{i}]: {problem}")
    return options


def host_options(ctx: ToolContext, kind: str, options: list[str]) -> list[str]:
    """`options` as mount(8) gets them: overlay's layer directories mapped under the root."""
    return optionpaths.map_paths(kind, options, ctx.path)


def mount_commands(
    ctx: ToolContext, *, source: str, fstype: str, options: list[str], host_target: Path
) -> list[list[str]]:
    """mount(8) argv list for one mount (a bind with options needs a remount)."""
    opts = [o for o in options if o != "defaults"]
    target = str(host_target)
    if fstype == "tmpfs" or source == "tmpfs":
        return [
            ["mount", "-t", "tmpfs", *(["-o", ",".join(opts)] if opts else []), "tmpfs", target]
        ]
    if fstype == "overlay" or source == "overlay":
        mapped = ",".join(host_options(ctx, "overlay", opts))
        return [["mount", "-t", "overlay", "overlay", "-o", mapped, target]]
    if fstype == "bind":
        commands = [["mount", "--bind", str(ctx.path(source)), target]]
        if opts:
            commands.append(["mount", "-o", ",".join(["remount", "bind", *opts]), target])
        return commands
    host = source_host(ctx, source)
    kind = [] if fstype in ("auto", "") else ["-t", fstype]
    if source.startswith("/dev/"):
        return [["mount", *kind, *(["-o", ",".join(opts)] if opts else []), str(host), target]]
    if not host.is_file():
        raise ToolError(f"mount source {source} is not an image file under the root")
    loop = ["loop", *(o for o in opts if o != "loop")]
    return [["mount", *kind, "-o", ",".join(loop), str(host), target]]


def wanted_options_present(wanted: list[str], current_options: list[str]) -> bool:
    """Every wanted option is in effect ('defaults' ignored), compared in the normal form
    the storage controller uses too (contract.vocab.fsoptions.normal_mount_option: 'size=1t'
    is findmnt's 'size=1073741824k', 'mode=0750' is 'mode=750')."""
    normal = fsoptions.normal_mount_option
    have = {normal(o) for o in current_options}
    return all(normal(o) in have for o in wanted if o != "defaults")


async def unmount(ctx: ToolContext, host_target: Path, *, lazy: bool = False) -> list[str]:
    """umount `host_target` and detach its loop device; returns the devices detached."""
    entry = await current(ctx, host_target)
    if entry is None:
        return []
    device = entry["device"]
    before = await blockdev.loops(ctx)
    await ctx.runner.run(["umount", *(["-l"] if lazy else []), str(host_target)])
    if device not in before:
        return []
    after = await blockdev.loops(ctx)
    if device in after and after[device] == before[device]:
        users = await ctx.runner.run(["findmnt", "-n", "-S", device], check=False)
        if users.returncode == 0 and users.text.strip():
            return []  # still mounted elsewhere
        await ctx.runner.run(["losetup", "-d", device])
    return [device]
