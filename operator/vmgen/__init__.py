"""vmgen: a Kubernetes operator that turns running Azure VMs into generalized image sources."""

__version__ = "0.1.0"
