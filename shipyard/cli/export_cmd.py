"""``shipyard export``: Kubernetes, KServe and Kubeflow Pipelines files for what Shipyard runs locally."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.export.kube import Exported, Resources

app = typer.Typer(help="Kubernetes, KServe and Kubeflow Pipelines files.", no_args_is_help=True)

_OUTPUT = typer.Option(
    None, "--output", "-o", help="The file to write (default: standard output).", show_default=False
)
_NAMESPACE = typer.Option(
    None, "--namespace", "-n", help="The namespace to put the objects in.", show_default=False
)
_NAME = typer.Option(None, "--name", help="The objects' name (default: the model's).", show_default=False)
_MIN = typer.Option(1, "--min-replicas", min=0, help="Fewest replicas.")
_MAX = typer.Option(3, "--max-replicas", min=1, help="Most replicas.")
_CPU = typer.Option("500m", "--cpu", help="CPU request of the serving container.")
_MEMORY = typer.Option("1Gi", "--memory", help="Memory request of the serving container.")
_CPU_LIMIT = typer.Option("2", "--cpu-limit", help="CPU limit ('' for none).")
_MEMORY_LIMIT = typer.Option("2Gi", "--memory-limit", help="Memory limit ('' for none).")
_GPUS = typer.Option(0, "--gpus", min=0, help="nvidia.com/gpu limit.")


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str, gpus: int) -> Resources:
    return Resources(cpu, memory, cpu_limit or None, memory_limit or None, gpus)


def _emit(exported: Exported, output: Path | None) -> None:
    for note in exported.notes:
        typer.echo(f"note: {note}", err=True)
    text = exported.to_yaml()
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    kinds = ", ".join(f"{d['kind']}/{d['metadata']['name']}" for d in exported.documents)
    typer.echo(f"wrote {kinds} to {output}", err=True)


@app.command("kserve")
def kserve(
    target: str = typer.Argument(..., help="A model URI (models:/churn@champion…) or a deploy.yaml."),
    image: list[str] = typer.Option(
        [],
        "--image",
        help="The image `shipyard build` made: IMAGE, or LABEL=IMAGE for each version of a deploy.yaml.",
        show_default=False,
    ),
    model_format: str = typer.Option(
        "auto",
        "--format",
        help="auto (the ONNX runtime when the package allows, else custom), onnx or custom.",
    ),
    storage_uri: str = typer.Option(
        None,
        "--storage-uri",
        help="Where the cluster fetches the package from (s3://…, gs://…, pvc://…); default its own location "
        "when that is an object store.",
        show_default=False,
    ),
    protocol: str = typer.Option("rest", "--protocol", help="The custom container's port: rest or grpc."),
    canary_percent: int = typer.Option(
        None,
        "--canary-percent",
        min=0,
        max=100,
        help="Traffic for this revision while the previous one keeps the rest (a deploy.yaml's weights set "
        "it per model).",
        show_default=False,
    ),
    name: str = _NAME,
    namespace: str = _NAMESPACE,
    min_replicas: int = _MIN,
    max_replicas: int = _MAX,
    cpu: str = _CPU,
    memory: str = _MEMORY,
    cpu_limit: str = _CPU_LIMIT,
    memory_limit: str = _MEMORY_LIMIT,
    gpus: int = _GPUS,
    output: Path = _OUTPUT,
) -> None:
    """A KServe InferenceService (v1beta1, Open Inference Protocol v2) for a registered model.

    Examples:

        shipyard export kserve models:/churn@champion --image registry.example/churn:7 -o churn.yaml

        shipyard export kserve models:/churn/7 --storage-uri s3://models/churn/7 --format onnx

        shipyard export kserve deploy.yaml --image champion=reg.example/churn:6 --image challenger=r.io/c:7
    """
    from shipyard import models
    from shipyard.errors import InvalidInput
    from shipyard.export.kube import describe_model, kserve_from_deployment, kserve_manifests

    images: dict[str, str] = {}
    for entry in image:
        label, sep, reference = entry.partition("=")
        images[label if sep else ""] = reference if sep else entry
    options = {
        "model_format": model_format,
        "storage_uri": storage_uri,
        "protocol": protocol,
        "namespace": namespace,
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "resources": _resources(cpu, memory, cpu_limit, memory_limit, gpus),
    }
    registry = models.registry_client()
    if Path(target).suffix in (".yaml", ".yml"):
        if canary_percent is not None or name is not None:
            raise InvalidInput("--canary-percent and --name come from the deploy.yaml; leave them out")
        exported = kserve_from_deployment(Path(target), registry, images=images, **options)
    else:
        if len(images) > 1 or (images and "" not in images):
            raise InvalidInput("--image takes one IMAGE for a model URI (LABEL=IMAGE is for a deploy.yaml)")
        exported = kserve_manifests(
            describe_model(target, registry, name),
            image=images.get(""),
            canary_percent=canary_percent,
            **options,
        )
    _emit(exported, output)


@app.command("k8s")
def k8s(
    uri: str = typer.Argument(..., help="A model URI: models:/churn@champion, models:/churn/7…"),
    image: str = typer.Option(..., "--image", help="The image `shipyard build` made for the model."),
    cpu_target: int = typer.Option(70, "--cpu-target", help="CPU utilization (%) the autoscaler keeps."),
    scrape_interval: str = typer.Option("30s", "--scrape-interval", help="How often Prometheus scrapes."),
    name: str = _NAME,
    namespace: str = _NAMESPACE,
    min_replicas: int = typer.Option(1, "--min-replicas", min=1, help="Fewest replicas."),
    max_replicas: int = _MAX,
    cpu: str = _CPU,
    memory: str = _MEMORY,
    cpu_limit: str = _CPU_LIMIT,
    memory_limit: str = _MEMORY_LIMIT,
    gpus: int = _GPUS,
    output: Path = _OUTPUT,
) -> None:
    """Deployment, Service, HorizontalPodAutoscaler and ServiceMonitor for a cluster without KServe.

    Examples:

        shipyard export k8s models:/churn@champion --image registry.example/churn:7 -o churn.yaml

        shipyard export k8s models:/churn/7 --image reg.example/churn:7 --namespace ml --max-replicas 10
    """
    from shipyard import models
    from shipyard.export.kube import describe_model, k8s_manifests

    model = describe_model(uri, models.registry_client(), name)
    exported = k8s_manifests(
        model,
        image=image,
        namespace=namespace,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        cpu_target=cpu_target,
        resources=_resources(cpu, memory, cpu_limit, memory_limit, gpus),
        scrape_interval=scrape_interval,
    )
    _emit(exported, output)


@app.command("platform")
def platform(
    output: Path = typer.Option(..., "--output", "-o", help="The folder to write the manifests into."),
    image: str = typer.Option(
        ...,
        "--image",
        help="An image with shipyard[postgres,s3] installed (the platform server and scheduler run it).",
    ),
    namespace: str = _NAMESPACE,
    replicas: int = typer.Option(2, "--replicas", min=1, help="Platform server replicas."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes in each replica."),
    artifact_root: str = typer.Option(
        "s3://shipyard-artifacts", "--artifact-root", help="Where artifacts live (every replica reaches it)."
    ),
    s3_endpoint: str = typer.Option(
        None, "--s3-endpoint", help="An S3-compatible endpoint (MinIO, Ceph…).", show_default=False
    ),
    default_permission: str = typer.Option(
        "READ", "--default-permission", help="What users may do without a grant: NO_PERMISSIONS, READ, EDIT…"
    ),
    admin_user: str = typer.Option(
        "admin",
        "--admin-user",
        help="The first admin, created on start with the password in Secret shipyard-admin.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace platform files already in --output."),
) -> None:
    """The platform server, scheduler, serving monitor and Grafana dashboard as manifests with a
    kustomization.yaml (kubectl apply -k DIR); database URL and S3 keys come from Secrets you create.

    Examples:

        shipyard export platform -o deploy/k8s --image registry.example/shipyard:0.1.0

        shipyard export platform -o k8s --image reg.example/shipyard:0.1.0 -n ml --s3-endpoint http://minio:9000
    """
    from shipyard.export.platform import PlatformOptions, write_platform

    options = PlatformOptions(
        image=image,
        namespace=namespace,
        replicas=replicas,
        workers=workers,
        artifact_root=artifact_root,
        s3_endpoint=s3_endpoint,
        default_permission=default_permission,
        admin_user=admin_user,
    )
    written = write_platform(options, output, force=force)
    typer.echo(
        f"wrote {', '.join(p.name for p in written)} to {output}; apply with: kubectl apply -k {output}"
    )


@app.command("kfp")
def kfp(
    target: str = typer.Argument(
        ..., help="The pipeline: path/to/file.py:name, module:name, or a compiled spec (.yaml)."
    ),
    image: str = typer.Option(
        ..., "--image", help="An image with Shipyard and the pipeline's code (importable as compiled)."
    ),
    output: Path = _OUTPUT,
) -> None:
    """Kubeflow Pipelines v2 IR (PipelineSpec) for a pipeline: each step a container component in --image.

    Examples:

        shipyard export kfp examples/train_pipeline.py:training --image reg.example/train:1 -o pipeline.yaml

        shipyard export kfp pipeline.yaml --image reg.example/train:1
    """
    import yaml

    from shipyard import __version__
    from shipyard.export.image import check_image
    from shipyard.export.kfp import export_kfp
    from shipyard.pipelines.targets import load_spec

    check_image(image, "--image")
    spec = load_spec(target)
    document = export_kfp(spec, image, sdk_version=f"shipyard-{__version__}")
    text = f"# PIPELINE DEFINITION\n# Name: {document['pipelineInfo']['name']}\n" + yaml.safe_dump(
        document, sort_keys=False
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote the KFP pipeline {document['pipelineInfo']['name']} to {output}", err=True)
