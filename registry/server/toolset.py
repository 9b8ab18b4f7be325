"""The live tool table of one registry: built-ins, plugins and registered tools.

Starts from the profile's built-ins, adds every plugin found in the plugin
directory, and (full profile) the external tools registered earlier, which
are kept in `<state_dir>/registered.json` so they survive a restart. Register
and Deregister follow the profile: on `full` a built-in can be neither
replaced nor removed, a registration needs a handler (an address, or plugin
files for `plugin.<name>`) and valid JSON Schemas; on `aios` everything is
accepted as aiOS does (§2.8: definitions overwrite, built-ins keep their
handler, a non-plugin name without a built-in handler can never run).

Called by registry.server.grpc (ListTools/GetTool/Register/Deregister) and
registry.server.pipeline (lookup).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from pathlib import Path

from contract._gen import tools_pb2
from contract.tooldef import is_write
from registry.server import plugins
from registry.server.external import external_class, from_definition
from registry.server.profiles import Entry, Profile

log = logging.getLogger(__name__)

REGISTERED = "registered.json"


def _plugin_entry(cls: type[plugins.PluginTool]) -> Entry:
    return Entry(
        spec=cls.spec,
        enforced=(plugins.PLUGIN_CAPABILITY,),
        handler=cls,
        builtin=False,
        writes=True,
        namespace="plugin",
        kind="plugin",
    )


class ToolSet:
    def __init__(self, profile: Profile, *, plugin_dir: Path, state_dir: Path) -> None:
        self.profile = profile
        self.plugin_dir = plugin_dir
        self._store = state_dir / REGISTERED
        self._builtins = profile.builtins()
        self._entries: dict[str, Entry] = dict(self._builtins)
        self._registered: dict[str, tuple[bytes, str]] = {}  # name -> (definition, address)
        timeout = profile.plugin_timeout_ms
        for name, cls in plugins.scan(plugin_dir, timeout_ms=timeout).items():
            if name not in self._builtins:
                self._entries[name] = _plugin_entry(cls)
        if profile.persists_registrations:
            self._load_registered()

    # -- reading --

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def list(self, namespace: str = "") -> list[Entry]:
        entries = sorted(self._entries.values(), key=lambda e: e.spec.name)
        return [e for e in entries if not namespace or e.namespace == namespace]

    def handler_of(self, name: str) -> Entry | None:
        """The entry that can restore a backup of `name` (built-ins only)."""
        return self._builtins.get(name)

    # -- Register / Deregister --

    def register(self, definition: tools_pb2.ToolDefinition, address: str) -> str:
        """Add a tool; returns "" when accepted, else why not."""
        if not self.profile.locked_builtins:
            self._register_aios(definition)
            return ""
        name = definition.name
        if name in self._builtins:
            return f"cannot replace built-in tool {name}"
        if name.startswith("plugin.") and not address:
            cls = plugins.load(self.plugin_dir, name.removeprefix("plugin."), timeout_ms=None)
            if cls is None:
                stem = name.removeprefix("plugin.")
                return (
                    f"no plugin {stem} in {self.plugin_dir} "
                    f"(needs {stem}.py and a valid {stem}.meta.json)"
                )
            self._entries[name] = _plugin_entry(cls)
            return ""
        if not address:
            return f"handler_address is required to register {name}: a tool needs a handler"
        try:
            spec = from_definition(definition)
        except ValueError as exc:
            return f"cannot register {name}: {exc}"
        self._entries[name] = Entry(
            spec=spec,
            enforced=spec.capabilities,
            handler=external_class(spec, address),
            builtin=False,
            writes=is_write(spec.capabilities),
            namespace=definition.namespace or spec.namespace,
            kind="external",
        )
        self._registered[name] = (definition.SerializeToString(), address)
        self._save_registered()
        return ""

    def _register_aios(self, definition: tools_pb2.ToolDefinition) -> None:
        name = definition.name
        spec = from_definition(definition, strict=False)
        spec = replace(spec, reversible=definition.reversible)
        current = self._entries.get(name)
        if current is not None and current.builtin:
            self._entries[name] = replace(current, spec=spec, namespace=definition.namespace)
            return
        if name.startswith("plugin."):
            stem = name.removeprefix("plugin.")
            cls = plugins.load(self.plugin_dir, stem, timeout_ms=self.profile.plugin_timeout_ms)
            enforced: tuple[str, ...] | None = (plugins.PLUGIN_CAPABILITY,)
        else:
            cls, enforced = None, None  # not in aiOS's capability table: always denied
        self._entries[name] = Entry(
            spec=spec,
            enforced=enforced,
            handler=cls,
            builtin=False,
            writes=True,
            namespace=definition.namespace,
            kind="plugin" if cls else "definition",
        )

    def deregister(self, name: str) -> tuple[bool, str]:
        if not self.profile.locked_builtins:
            self._entries.pop(name, None)
            return True, f"Tool {name} deregistered"
        if name in self._builtins:
            return False, f"cannot deregister built-in tool {name}"
        if self._entries.pop(name, None) is None:
            return False, f"Tool not found: {name}"
        if self._registered.pop(name, None) is not None:
            self._save_registered()
        return True, f"Tool {name} deregistered"

    # -- persistence (full profile) --

    def _save_registered(self) -> None:
        data = {
            name: {"definition": base64.b64encode(raw).decode(), "address": address}
            for name, (raw, address) in sorted(self._registered.items())
        }
        tmp = self._store.with_name(REGISTERED + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(self._store)

    def _load_registered(self) -> None:
        if not self._store.exists():
            return
        try:
            data = json.loads(self._store.read_text(encoding="utf-8"))
        except ValueError as exc:
            log.error("toolset: ignoring unreadable %s: %s", self._store, exc)
            return
        for name, item in data.items():
            definition = tools_pb2.ToolDefinition.FromString(base64.b64decode(item["definition"]))
            error = self.register(definition, str(item["address"]))
            if error:
                log.error("toolset: registered tool %s not restored: %s", name, error)
