"""A local stand-in for Azure Resource Manager's Compute API and Microsoft Entra ID's token endpoint.

`server.ArmSimulator` is what tests and the demo start; the real `azure-mgmt-compute` and `azure-identity`
clients talk to it unchanged over TLS. The modules: `server` (HTTP app, thread, control surface),
`state` (the world model), `lro` (long-running operations), `entra` (tokens), `faults` (injection),
`errors` (Azure's error bodies) and `schema` (validation against Azure's published definitions).
"""
