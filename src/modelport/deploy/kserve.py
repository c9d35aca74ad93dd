"""KServe: modelport as a (Cluster)ServingRuntime, and one InferenceService per model.

The runtime serves V1 and V2 REST on 8080 (KServe's default container port) and V2 gRPC on
8081 (KServe's model servers' gRPC port; an InferenceService asking for ``grpc-v2`` names it
``h2c``). KServe's storage initializer downloads ``storageUri`` into ``/mnt/models``; the
container links it into a one-model repository under the InferenceService's name
(``{{.Name}}``), so V1 and V2 paths carry the name KServe routes by.
"""

from __future__ import annotations

import re
from typing import Any

from modelport.deploy.kubernetes import container_security
from modelport.deploy.plan import METRICS, Plan, dump_yaml

__all__ = ["KServeOptions", "isvc_name", "manifests", "render", "runtime_script"]

MOUNT = "/mnt/models"
GRPC_PORT = 8081
# KServe model format names for modelport's flavors ("sparkml" is modelport's own: nothing else serves it).
FORMATS = ("sklearn", "xgboost", "lightgbm", "onnx", "mlflow", "sparkml")


class KServeOptions:
    def __init__(
        self,
        runtime_name: str = "kserve-modelport",
        cluster: bool = True,
        namespace: str | None = None,
        canary_percent: int | None = None,
        protocol: str = "v2",
        storage_uri: str = "s3://my-bucket/models",
        min_replicas: int = 1,
        max_replicas: int = 3,
    ) -> None:
        self.runtime_name = runtime_name
        self.cluster = cluster
        self.namespace = namespace
        self.canary_percent = canary_percent
        self.protocol = protocol
        self.storage_uri = storage_uri.rstrip("/")
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas


def isvc_name(model: str) -> str:
    """A DNS-1035 label (what an InferenceService name must be): lowercase, '-' for anything else."""
    name = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = "m-" + name
    return name[:63].rstrip("-")


def runtime_script(plan: Plan) -> str:
    """The container's shell line: the downloaded model becomes ``/tmp/models/{{.Name}}``, then serve."""
    args = [a for a in plan.serve_args() if a != plan.model_uri]
    serve = " ".join(["exec modelport serve /tmp/models", *args, f"--grpc-port={GRPC_PORT}"])
    return f"mkdir -p /tmp/models && ln -sfn {MOUNT} /tmp/models/{{{{.Name}}}} && {serve}"


def runtime(plan: Plan, opts: KServeOptions, flavors: list[str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": opts.runtime_name}
    if not opts.cluster and opts.namespace:
        metadata["namespace"] = opts.namespace
    memory = plan.memory_needed_mb()
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime" if opts.cluster else "ServingRuntime",
        "metadata": metadata,
        "spec": {
            "annotations": {"prometheus.kserve.io/port": str(plan.port), "prometheus.kserve.io/path": METRICS},
            "supportedModelFormats": [
                # autoSelect only where no KServe runtime competes: the others are chosen by name.
                {"name": f, "version": "1", "autoSelect": f == "sparkml", "priority": 1}
                for f in flavors
            ],
            "protocolVersions": ["v1", "v2", "grpc-v2"],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": plan.image,
                    "command": ["/bin/sh", "-c"],
                    "args": [runtime_script(plan)],
                    "env": [
                        {"name": "MODELPORT_COMPILE_CACHE", "value": "/tmp/modelport-compiled"},
                        {"name": "MODELPORT_LOG_FORMAT", "value": "json"},
                    ],
                    "securityContext": {**container_security(), "readOnlyRootFilesystem": False},
                    "resources": {
                        "requests": {"cpu": plan.cpu or str(plan.workers), "memory": f"{plan.memory_request_mb()}Mi"},
                        "limits": {"memory": f"{memory}Mi"},
                    },
                }
            ],
        },
    }


def inference_service(name: str, flavor: str, plan: Plan, opts: KServeOptions) -> dict[str, Any]:
    model: dict[str, Any] = {
        "modelFormat": {"name": flavor},
        "runtime": opts.runtime_name,
        "protocolVersion": opts.protocol,
        "storageUri": f"{opts.storage_uri}/{name}",
    }
    if opts.protocol == "grpc-v2":
        model["ports"] = [{"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"}]
    predictor: dict[str, Any] = {"minReplicas": opts.min_replicas, "maxReplicas": opts.max_replicas}
    if opts.canary_percent is not None:
        predictor["canaryTrafficPercent"] = opts.canary_percent
    predictor["model"] = model
    metadata: dict[str, Any] = {"name": isvc_name(name)}
    if opts.namespace:
        metadata["namespace"] = opts.namespace
    metadata["annotations"] = {"serving.kserve.io/enable-prometheus-scraping": "true"}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }


def manifests(plan: Plan, opts: KServeOptions) -> list[dict[str, Any]]:
    """The runtime for the flavors served, then an InferenceService per model (its newest version's flavor)."""
    by_name: dict[str, str] = {}
    for m in plan.models:
        by_name[m.name] = m.flavor  # the newest version's: versions are sorted
    flavors = sorted(set(by_name.values()), key=FORMATS.index) if by_name else list(FORMATS)
    docs = [runtime(plan, opts, flavors)]
    docs += [inference_service(n, f, plan, opts) for n, f in sorted(by_name.items())]
    return docs


def render(plan: Plan, opts: KServeOptions) -> dict[str, str]:
    header = (
        "Generated by `modelport deploy kserve`: regenerate rather than edit.\n"
        f"Each InferenceService's storageUri is {opts.storage_uri}/<model>; {plan.footprint_note()}.\n"
        "Apply: kubectl apply -f servingruntime.yaml"
    )
    return {"servingruntime.yaml": dump_yaml(manifests(plan, opts), header)}
