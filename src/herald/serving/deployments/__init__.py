"""Deployments: a public model name served by one or more registry versions with traffic
weights (canary, A/B), sticky users, replicas, health checks, failover and blue-green switches.
See docs/guides/deployments.md."""

from herald.serving.deployments.manager import DeploymentManager, DeploymentMetrics
from herald.serving.deployments.models import (
    Deployment,
    DeploymentNotFound,
    InvalidDeployment,
    Target,
    parse_deployment,
)
from herald.serving.deployments.store import DeploymentStore

__all__ = [
    "Deployment",
    "DeploymentManager",
    "DeploymentMetrics",
    "DeploymentNotFound",
    "DeploymentStore",
    "InvalidDeployment",
    "Target",
    "parse_deployment",
]
