"""`aios validate` and `aios schema`: check spec files, export the JSON Schema.

Loaded lazily by reconciler.cli.main (COMMANDS) when one of these commands
runs; everything heavy (pydantic models, the YAML parser) is imported inside
the command, so `aios --help` stays fast; the kind names come from the
pydantic-free kind table (specs.kinds.DEFAULT_KINDS, which a test holds
equal to the domain declarations). Exit codes: 0 valid, 1 invalid input, 70
an internal error (mapped by reconciler.cli.main).
"""

from __future__ import annotations

import json

import click

from specs.kinds import DEFAULT_KINDS


@click.command()
@click.option(
    "-f",
    "--filename",
    "filenames",
    multiple=True,
    metavar="PATH",
    help="A spec file or a directory of them (walked recursively for *.yaml and *.yml). "
    "Repeat it, or list more PATHs after it.",
)
@click.argument("more", nargs=-1, metavar="[PATH]...")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one `path:line:col: Kind/name: field: message` line per error on stderr; "
    'json: {"valid": ..., "errors": [...]} on stdout.',
)
def validate(filenames: tuple[str, ...], more: tuple[str, ...], output: str) -> None:
    """Check spec files without touching the machine.

    Loads every PATH as one spec set: YAML, schema of each kind, and the checks
    across resources (duplicates, two resources claiming one object, dependsOn).
    Reports every problem at once. Exit 0 if valid, 1 if not, 70 on an internal
    error (a bug).

    \b
    Examples:
      aios validate -f examples/quickstart
      aios validate -f network.yaml firewall.yaml -o json
    """
    from specs.errors import SpecError
    from specs.loader import load_paths

    paths = [*filenames, *more]
    if not paths:
        raise click.UsageError("name at least one spec file or directory with -f PATH")
    try:
        specset = load_paths(paths)
    except SpecError as exc:
        if output == "json":
            errors = [issue.to_dict() for issue in exc.details]
            click.echo(json.dumps({"valid": False, "errors": errors}, indent=2))
        else:
            for line in exc.issues:
                click.echo(line, err=True)
        raise SystemExit(1) from None
    if output == "json":
        report = {
            "valid": True,
            "resources": len(specset),
            "digest": specset.digest,
            "errors": [],
        }
        click.echo(json.dumps(report, indent=2))
    else:
        noun = "resource" if len(specset) == 1 else "resources"
        click.echo(f"{len(specset)} {noun} valid (digest {specset.digest[:12]})")


@click.command()
@click.argument(
    "kind",
    required=False,
    type=click.Choice(DEFAULT_KINDS.names, case_sensitive=False),
    metavar="[KIND]",
)
@click.option(
    "--indent", type=int, default=2, show_default=True, help="Spaces of JSON indentation."
)
def schema(kind: str | None, indent: int) -> None:
    """Print the JSON Schema (draft 2020-12) of spec documents.

    Without KIND: one schema for any spec document (a oneOf keyed by `kind`),
    usable as the `$schema` of every spec file. With KIND (Network, Firewall,
    Packages, Storage, Models): that kind's schema only.

    \b
    Editor support (yaml-language-server, e.g. VS Code's YAML extension):
      aios schema > aios-spec.schema.json
    then start each spec file with
      # yaml-language-server: $schema=./aios-spec.schema.json
    """
    from specs.schema import kind_schema, spec_schema

    if kind is None:
        document = spec_schema()
    else:
        canonical = next(k for k in DEFAULT_KINDS.names if k.lower() == kind.lower())
        document = kind_schema(canonical)
    click.echo(json.dumps(document, indent=indent or None, sort_keys=False))
