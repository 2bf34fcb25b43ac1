"""pytest fixtures for the linux part of the testbed."""
