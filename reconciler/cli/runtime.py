"""`aios runtime serve`: the local AI runtime (aios.runtime.AIRuntime, aiOS's wire).

serve runs runtime.server until SIGTERM/SIGINT, then stops every llama-server it started
(their process groups). It listens by default on the 0600 unix socket
/run/aios/runtime.sock; `--listen 127.0.0.1:PORT` (or `[::1]:PORT`, `localhost:PORT`)
listens on loopback TCP — aiOS's own runtime binds [::]:50055, which this one refuses (no
authentication). Clients (the registry's model tools) find it through AIOS_RUNTIME_ADDR or
`aios registry serve --runtime`. The runtime package is imported inside the command, so
`aios --help` does not pay for grpc. Registered in reconciler.cli.main.COMMANDS.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import click

LISTEN = "unix:///run/aios/runtime.sock"  # runtime.listen.DEFAULT_LISTEN (not imported: grpc)
STATE_DIR = "/var/lib/aios/runtime"
MODEL_DIR = "/var/lib/aios/models"


@click.group()
def runtime() -> None:
    """Run the aios AI runtime (llama-server supervised per loaded model)."""


@runtime.command()
@click.option(
    "--listen",
    default=LISTEN,
    show_default=True,
    help="unix:///ABS/PATH (created 0600), or a loopback HOST:PORT (no authentication: any "
    "local user can load and query models). Other hosts are refused.",
)
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Where model files are (empty model_path, on-demand loads). "
    f"[default: $AIOS_MODEL_DIR, else {MODEL_DIR}]",
)
@click.option(
    "--llama-server",
    "llama_server",
    default=None,
    help="The llama-server binary. [default: $LLAMA_SERVER_PATH, else /usr/local/bin, "
    "/usr/bin, else the one beside this Python]",
)
@click.option(
    "--idle-unload-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Unload a model loaded on demand (by a first Infer) after this long without requests.",
)
@click.option(
    "--health-interval",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="Seconds between health checks of each llama-server (a crashed one is restarted).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(STATE_DIR),
    show_default=True,
    help="Per-model llama-server logs.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def serve(
    listen: str,
    model_dir: Path | None,
    llama_server: str | None,
    idle_unload_minutes: float,
    health_interval: float,
    state_dir: Path,
    verbose: bool,
) -> None:
    """Serve the AI runtime until SIGTERM or SIGINT; no llama-server outlives it."""
    from runtime.listen import check_listen
    from runtime.server import RuntimeOptions, find_llama_server
    from runtime.server import serve as run

    try:
        check_listen(listen)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    models = model_dir or Path(os.environ.get("AIOS_MODEL_DIR") or MODEL_DIR)
    options = RuntimeOptions(
        listen=listen,
        model_dir=models.resolve(),
        state_dir=state_dir.resolve(),
        llama_server=llama_server or find_llama_server(),
        idle_unload_s=idle_unload_minutes * 60,
        health_interval=health_interval,
    )
    try:
        asyncio.run(run(options))
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
