"""Entry point of the `aios` command: a click group whose commands load lazily.

Each command lives in its own module under reconciler.cli and is imported only
when invoked, so `aios validate` does not pay for grpc and `aios --help`
starts in milliseconds. To add a command, add one line to COMMANDS.
Exit codes shared by every command: 0 success, 1 a user-facing failure
(invalid input, a failed reconcile, an unusable state directory: one line on
stderr), 2 "changes pending" where a command defines it, 70 an internal error
(a bug: the traceback goes to stderr).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from reconciler import __version__

EXIT_FAILED = 1
EXIT_INTERNAL = 70

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "validate": "reconciler.cli.validate:validate",
    "schema": "reconciler.cli.validate:schema",
    "registry": "reconciler.cli.registry:registry",
    "runtime": "reconciler.cli.runtime:runtime",
    "sandbox": "reconciler.cli.sandbox:sandbox",
    "plan": "reconciler.cli.plan_cmds:plan",
    "diff": "reconciler.cli.plan_cmds:diff",
    "apply": "reconciler.cli.plan_cmds:apply",
    "rollback": "reconciler.cli.plan_cmds:rollback",
    "status": "reconciler.cli.inspect_cmds:status",
    "get": "reconciler.cli.inspect_cmds:get",
    "export": "reconciler.cli.inspect_cmds:export",
    "history": "reconciler.cli.inspect_cmds:history",
    "daemon": "reconciler.cli.daemon_cmd:daemon",
    "plans": "reconciler.cli.daemon_ctl:plans",
    "approve": "reconciler.cli.daemon_ctl:approve",
    "reject": "reconciler.cli.daemon_ctl:reject",
    "suspend": "reconciler.cli.daemon_ctl:suspend",
    "resume": "reconciler.cli.daemon_ctl:resume",
    "events": "reconciler.cli.daemon_ctl:events",
    "reconcile": "reconciler.cli.daemon_ctl:reconcile",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aios")
def cli() -> None:
    """aios: declarative system state for aiOS.

    Describe a machine in YAML specs (Network, Firewall, Packages, Storage,
    Models); aios plans the tool calls that make the machine match, proves the
    plan, runs it through the aiOS tool registry and verifies the result.
    """


def error_line(exc: BaseException) -> str:
    """One stderr line for a deliberate error: its message, and whether retrying may help."""
    hint = " (temporary; retrying may help)" if getattr(exc, "retryable", False) else ""
    return f"aios: {exc}{hint}"


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point; maps unexpected exceptions to exit 70.

    An AiosError a command did not map itself (e.g. a StateStoreError from a
    read command that opens the store directly) is a deliberate, explained
    failure: its message on stderr, exit 1, no traceback.
    """
    try:
        return cli.main(args=argv, prog_name="aios", standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:  # a bug: show it, exit with the internal-error code
        from reconciler.sdk.errors import AiosError

        if isinstance(exc, AiosError):
            print(error_line(exc), file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None
        import traceback

        traceback.print_exc()
        print("aios: internal error (exit 70); please report it", file=sys.stderr)
        raise SystemExit(EXIT_INTERNAL) from None


if __name__ == "__main__":  # python -m reconciler.cli.main
    main()
