"""pytest fixtures for the arm part of the testbed."""
