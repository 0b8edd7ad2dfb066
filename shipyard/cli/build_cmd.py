"""``shipyard build``: a container build context (and, with --build, the image) for one model."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli.output import console
from shipyard.export.image import DEFAULT_BASE_IMAGE


def build(
    uri: str = typer.Argument(
        ..., help="The model: models:/churn@champion, models:/churn/7, runs:/…, a folder."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="The folder to write the build context into."),
    tag: str = typer.Option(
        None, "--tag", "-t", help="The image's name (default shipyard/NAME:VERSION).", show_default=False
    ),
    name: str = typer.Option(None, "--name", help="Serve the model under this name (default: its own)."),
    base_image: str = typer.Option(
        DEFAULT_BASE_IMAGE, "--base-image", help="The Python base image, pinned by digest (IMAGE@sha256:…)."
    ),
    shipyard: str = typer.Option(
        None,
        "--shipyard",
        help="Where the image gets Shipyard: a requirement (default shipyard[serving]==this version), a "
        "wheel file or a source folder (copied into the context as a wheel).",
        show_default=False,
    ),
    force: bool = typer.Option(False, "--force", help="Replace a build context already in --output."),
    run_build: bool = typer.Option(
        False, "--build", help="Also build the image with docker, podman or buildah, whichever can here."
    ),
) -> None:
    """Write a build context that serves one registered model: Dockerfile, .dockerignore, deploy.yaml,
    the model's pinned requirements and its verified package.

    Examples:

        shipyard build models:/churn@champion -o build/churn

        shipyard build models:/churn/7 -o build/churn --tag registry.example/churn:7 --build
    """
    from shipyard import models
    from shipyard.export.image import build_image, write_build_context

    context = write_build_context(
        uri,
        output,
        models.registry_client(),
        base_image=base_image,
        shipyard=shipyard,
        tag=tag,
        name=name,
        force=force,
    )
    for warning in context.warnings:
        typer.echo(f"warning: {warning}", err=True)
    console.print(f"wrote the build context for {uri} to {output} (image {context.tag})", markup=False)
    if run_build:
        engine = build_image(context)
        console.print(f"built {context.tag} with {engine}", markup=False)
    else:
        console.print(f"build it with: docker build -t {context.tag} {output}", markup=False)
