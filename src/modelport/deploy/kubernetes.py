"""Kubernetes: Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget for ``modelport serve``.

Shutdown follows docs/operations.md: the kubelet runs the preStop hook (a sleep of
``--drain-seconds``, while endpoints stop sending traffic), then sends SIGTERM; the server
finishes in-flight requests within ``--grace-seconds``; ``terminationGracePeriodSeconds`` is
above both, so SIGKILL never cuts a request or the log flush short.
"""

from __future__ import annotations

from typing import Any

from modelport.deploy.plan import (
    AUTH_ENV,
    BAKED_CACHE,
    CACHE_DIR,
    HEALTH_LIVE,
    HEALTH_READY,
    METRICS,
    UID,
    Plan,
    dump_yaml,
)

__all__ = ["K8sOptions", "manifests", "render"]

AUTH_KEY = "token"


class K8sOptions:
    """Cluster-side settings beyond the shared :class:`Plan`."""

    def __init__(
        self,
        namespace: str | None = None,
        replicas: int = 2,
        min_replicas: int | None = None,
        max_replicas: int = 10,
        target_cpu: int = 70,
    ) -> None:
        self.namespace = namespace
        self.replicas = replicas
        self.min_replicas = min_replicas if min_replicas is not None else replicas
        self.max_replicas = max(max_replicas, self.min_replicas)
        self.target_cpu = target_cpu


def _meta(plan: Plan, opts: K8sOptions, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": plan.name}
    if opts.namespace:
        meta["namespace"] = opts.namespace
    meta["labels"] = labels(plan)
    meta.update(extra)
    return meta


def labels(plan: Plan) -> dict[str, str]:
    return {"app.kubernetes.io/name": "modelport", "app.kubernetes.io/instance": plan.name}


def auth_env(plan: Plan) -> list[dict[str, Any]]:
    """The token from a Secret (``kubectl create secret generic NAME --from-literal=token=...``), never a literal."""
    if not plan.auth_token_secret:
        return []
    ref = {"name": plan.auth_token_secret, "key": AUTH_KEY}
    return [{"name": AUTH_ENV, "valueFrom": {"secretKeyRef": ref}}]


def container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def cache_seed(plan: Plan) -> dict[str, Any]:
    """Copy the compile cache baked into the image onto the writable volume (the root filesystem is read-only)."""
    return {
        "name": "seed-compile-cache",
        "image": plan.image,
        "command": ["sh", "-c", f"if [ -d {BAKED_CACHE} ]; then cp -a {BAKED_CACHE}/. {CACHE_DIR}/; fi"],
        "securityContext": container_security(),
        "volumeMounts": [{"name": "compile-cache", "mountPath": CACHE_DIR}],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
    }


def ports(plan: Plan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}]
    if plan.grpc_port is not None:
        out.append({"name": "grpc", "containerPort": plan.grpc_port, "protocol": "TCP"})
    return out


def deployment(plan: Plan, opts: K8sOptions) -> dict[str, Any]:
    memory = plan.memory_needed_mb()
    container: dict[str, Any] = {
        "name": "modelport",
        "image": plan.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["modelport", "serve"],
        # The preStop sleep is the drain here, so the server itself stops as soon as SIGTERM comes.
        "args": plan.serve_args(drain=False) + [f"--grace-seconds={plan.grace_seconds:g}"],
        "env": [
            {"name": "MODELPORT_COMPILE_CACHE", "value": CACHE_DIR},
            {"name": "MODELPORT_LOG_FORMAT", "value": "json"},
            *auth_env(plan),
        ],
        "ports": ports(plan),
        "startupProbe": {
            "httpGet": {"path": HEALTH_LIVE, "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 300,
        },
        "readinessProbe": {
            "httpGet": {"path": HEALTH_READY, "port": "http"},
            "periodSeconds": 2,
            "failureThreshold": 1,
        },
        "livenessProbe": {
            "httpGet": {"path": HEALTH_LIVE, "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", f"{plan.drain_seconds:g}"]}}},
        "resources": {
            "requests": {"cpu": plan.cpu or str(plan.workers), "memory": f"{plan.memory_request_mb()}Mi"},
            "limits": {"memory": f"{memory}Mi"},
        },
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "compile-cache", "mountPath": CACHE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod: dict[str, Any] = {
        "terminationGracePeriodSeconds": plan.termination_grace_seconds,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [cache_seed(plan)],
        "containers": [container],
        "volumes": [
            {"name": "compile-cache", "emptyDir": {"sizeLimit": "256Mi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(plan, opts),
        "spec": {
            "replicas": opts.replicas,
            "selector": {"matchLabels": labels(plan)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": labels(plan),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(plan.port),
                        "prometheus.io/path": METRICS,
                    },
                },
                "spec": pod,
            },
        },
    }


def service(plan: Plan, opts: K8sOptions) -> dict[str, Any]:
    ports_: list[dict[str, Any]] = [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    if plan.grpc_port is not None:
        ports_.append({"name": "grpc", "port": plan.grpc_port, "targetPort": "grpc", "protocol": "TCP"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(plan, opts),
        "spec": {"type": "ClusterIP", "selector": labels(plan), "ports": ports_},
    }


def autoscaler(plan: Plan, opts: K8sOptions) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(plan, opts),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.name},
            "minReplicas": opts.min_replicas,
            "maxReplicas": opts.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": opts.target_cpu},
                    },
                }
            ],
        },
    }


def disruption_budget(plan: Plan, opts: K8sOptions) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(plan, opts),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(plan)}},
    }


def manifests(plan: Plan, opts: K8sOptions) -> list[dict[str, Any]]:
    return [deployment(plan, opts), service(plan, opts), autoscaler(plan, opts), disruption_budget(plan, opts)]


def render(plan: Plan, opts: K8sOptions) -> dict[str, str]:
    header = (
        "Generated by `modelport deploy k8s`: regenerate rather than edit.\n"
        f"Models: {plan.model_uri}; {plan.footprint_note()}.\n"
    )
    if plan.auth_token_secret:
        header += (
            f"Create the token first: kubectl create secret generic {plan.auth_token_secret} --from-literal=token=...\n"
        )
    header += "Apply: kubectl apply -f deployment.yaml"
    return {"deployment.yaml": dump_yaml(manifests(plan, opts), header)}
