"""The pure core: spec, status, planner, conditions and errors. No I/O, no kopf, no SDKs."""
