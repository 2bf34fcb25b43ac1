"""pytest fixtures for the kube part of the testbed."""
