"""What the engine commands share: target options, engine set-up, exit codes.

Target selection (every engine command): `--registry ADDR` (default from
/etc/aios/reconciler.yaml, then AIOS_TOOLS_ADDR, else localhost:50052),
`--sandbox NAME` (that sandbox's registry socket and its own state
directory; `apply` brings it up if needed), `--state-dir DIR`. Errors become
exit codes here, in one place: 1 failure, 2 changes pending (plan/diff),
3 stale saved plan, 4 destructive step refused, 70 internal error.
The daemon (`aios daemon`): `daemon_address` says where the target's daemon would
answer (--api, else AIOS_DAEMON_API, else `<the sandbox's state dir>/daemon.sock` for a
sandbox, else the config file's `api`, else unix:///run/aios/reconciler.sock);
`daemon_runs` whether one does (no grpc import when the socket file is missing); the
commands that write or report (apply, plan, rollback, status) go through it then, and
`finish_outcome` prints its answer and exits with its exit code.
This is the composition root: `domains()` is the list of domain declarations
(controllers.DEFAULT_DOMAINS) every engine command hands the engine, the
loader (its kind table) and the kind choices; LazyControllers loads their
controllers. Used by reconciler.cli.plan_cmds and reconciler.cli.inspect_cmds.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler.config import load_settings
from reconciler.engine.reconcile import Engine, Target
from reconciler.engine.store import Store
from reconciler.sdk.controller import Controller
from reconciler.sdk.daemon_types import ApplyOutcome
from reconciler.sdk.errors import AiosError, DestructiveRefused, StalePlan

if TYPE_CHECKING:
    from reconciler.daemon_client import DaemonClient
    from specs.domains import Domains

EXIT_FAILED = 1
EXIT_CHANGES = 2
EXIT_STALE = 3
EXIT_DESTRUCTIVE = 4

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def target_options(func: F) -> F:
    """--registry / --sandbox / --state-dir, shared by every engine command."""
    func = click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Reconciler state directory (default /var/lib/aios/reconciler, or the sandbox's).",
    )(func)
    func = click.option(
        "--sandbox",
        metavar="NAME",
        help="Act on the sandbox NAME (its registry socket and its own state directory).",
    )(func)
    return click.option(
        "--registry",
        metavar="ADDR",
        help="Tool registry address: unix:///path or host:port "
        "(default: AIOS_TOOLS_ADDR, else localhost:50052).",
    )(func)


def resolve_target(
    registry: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    *,
    bring_up: bool = False,
    need_registry: bool = True,
) -> Target:
    if registry and sandbox:
        raise click.UsageError("--registry and --sandbox are exclusive")
    settings = load_settings(registry=registry, state_dir=str(state_dir) if state_dir else None)
    if sandbox is None:
        return Target(
            name=f"registry:{settings.registry}",
            address=settings.registry,
            state_dir=settings.state_dir,
            agent_id=settings.agent_id,
        )
    import sandbox.lifecycle as sandboxes

    box = sandboxes.load(sandbox)
    if box is not None and not need_registry:
        pass
    elif box is None or not box.running():
        if not bring_up:
            raise click.ClickException(
                f"sandbox {sandbox} is not running; start it with: aios sandbox up {sandbox}"
            )
        click.echo(f"bringing up sandbox {sandbox} …", err=True)
        box = asyncio.run(sandboxes.up(sandbox))
    return Target(
        name=f"sandbox:{sandbox}",
        address=f"unix://{box.socket}",
        state_dir=state_dir or box.state_dir,
        agent_id=settings.agent_id,
        sandbox=sandbox,
    )


SANDBOX_DAEMON_SOCKET = "daemon.sock"  # in the sandbox's state directory


def api_option(func: F) -> F:
    """--api unix:///PATH: the daemon to go through."""
    return click.option(
        "--api",
        metavar="unix:///PATH",
        help="The daemon's API socket (default: AIOS_DAEMON_API, else the sandbox's "
        "state dir/daemon.sock, else unix:///run/aios/reconciler.sock); when a daemon "
        "answers there the command goes through it.",
    )(func)


def daemon_address(api: str | None, sandbox: str | None, state_dir: Path | None) -> str:
    """Where the target's daemon answers, if one runs (see the module docstring)."""
    import os

    explicit = api or os.environ.get("AIOS_DAEMON_API")
    if explicit:
        return explicit
    if sandbox is not None:
        if state_dir is None:
            import sandbox.lifecycle as sandboxes

            box = sandboxes.load(sandbox)
            if box is None:
                raise click.ClickException(
                    f"no sandbox {sandbox}; start it with: aios sandbox up {sandbox}"
                )
            state_dir = box.state_dir
        return f"unix://{Path(state_dir).absolute() / SANDBOX_DAEMON_SOCKET}"
    return load_settings().api


def daemon_runs(address: str) -> bool:
    """Whether something accepts connections at the daemon's address (a stale socket
    file, or none, is no daemon). Checked before any gRPC module is imported."""
    from contract.sockets import answers, unix_path

    try:
        path = unix_path(address)
    except ValueError:
        return False
    if path is None:
        return False
    try:
        if not path.is_socket():
            return False
    except OSError:
        return False
    return answers(path)


def require_daemon(address: str) -> None:
    """Exit 1 with a clear line when no daemon answers at `address`."""
    if not daemon_runs(address):
        echo_err(
            f"aios: no daemon answers at {address}; this command needs a running daemon "
            "(start one with: aios daemon, or name its socket with --api)"
        )
        raise SystemExit(EXIT_FAILED)


def routed_to_daemon(
    api: str | None, registry: str | None, sandbox: str | None, state_dir: Path | None
) -> str | None:
    """The daemon's address when this command should go through a running daemon, else None.

    An explicit --registry without --api names another target than the daemon's:
    such a command runs one-shot (as it did before daemons existed).
    """  # fmt: skip
    if registry and not api:
        return None
    try:
        address = daemon_address(api, sandbox, state_dir)
    except click.ClickException:  # no such sandbox (yet: apply brings it up): no daemon
        return None
    return address if daemon_runs(address) else None


def via_daemon(address: str, call: Callable[[DaemonClient], Awaitable[T]]) -> T:
    """Run one call of a DaemonClient on `address`; errors as `run` maps them."""

    async def go() -> T:
        from reconciler.daemon_client import DaemonClient

        async with DaemonClient(address) as client:
            return await call(client)

    return run(go())


def finish_outcome(outcome: ApplyOutcome) -> None:
    """Print what the daemon said (output on stdout, errors on stderr); exit with its code."""
    if outcome.output:
        click.echo(outcome.output, nl=False)
    for line in outcome.errors:
        echo_err(line)
    raise SystemExit(outcome.exit_code)


def domains() -> Domains:
    """The domain declarations this aios runs (the built-in ones)."""
    from controllers import DEFAULT_DOMAINS

    return DEFAULT_DOMAINS


class LazyControllers(Mapping[str, Controller[Any]]):
    """Domain -> controller, each domain's controller imported on first use.

    The engine asks only for the domains a spec set involves, so `aios apply`
    of Network + Firewall specs never imports the storage, packages or models
    controllers (only their declarations). Iterating imports every domain
    (export, status of all). `only` limits the mapping to some domain names;
    `declared` is the list of declarations (default: `domains()`).
    """

    def __init__(
        self, only: tuple[str, ...] | None = None, declared: Domains | None = None
    ) -> None:
        self.declared = declared if declared is not None else domains()
        self._domains = tuple(d for d in self.declared.names if only is None or d in only)
        self._loaded: dict[str, Controller[Any]] = {}

    def __getitem__(self, domain: str) -> Controller[Any]:
        if domain not in self._domains:
            raise KeyError(domain)
        if domain not in self._loaded:
            from controllers import load_controller

            self._loaded[domain] = load_controller(self.declared[domain])
        return self._loaded[domain]

    def __iter__(self) -> Iterator[str]:
        return (d for d in self._domains if d in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@contextlib.asynccontextmanager
async def open_engine(target: Target, only: tuple[str, ...] | None = None) -> AsyncIterator[Engine]:
    """An Engine with a registry client, the store and the declared domains (all,
    or the `only` ones' controllers); closed afterwards."""
    from reconciler.client import RegistryClient

    store = Store(target.state_dir)
    client = RegistryClient(target.address, agent_id=target.agent_id, attempts=1)  # Engine.retry
    declared = domains()
    try:
        yield Engine(target, store, client, LazyControllers(only, declared), declared)
    finally:
        await client.close()
        store.close()


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine; AiosErrors become one clear line and an exit code."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except StalePlan as exc:
        click.echo(f"aios: {exc}", err=True)
        raise SystemExit(EXIT_STALE) from None
    except DestructiveRefused as exc:
        click.echo(f"aios: {exc}", err=True)
        raise SystemExit(EXIT_DESTRUCTIVE) from None
    except AiosError as exc:
        click.echo(f"aios: {_error_text(exc)}", err=True)
        raise SystemExit(EXIT_FAILED) from None
    except ValueError as exc:  # SpecError is a ValueError with .issues
        issues = getattr(exc, "issues", None)
        if issues is None:
            raise
        for issue in issues:
            click.echo(str(issue), err=True)
        raise SystemExit(EXIT_FAILED) from None


def _error_text(exc: AiosError) -> str:
    from reconciler.cli.main import error_line

    return error_line(exc).removeprefix("aios: ")


def echo_err(text: str) -> None:
    click.echo(text, err=True)


def isatty() -> bool:
    return sys.stdout.isatty()
