"""The only modules that import Azure, asyncssh, pypsrp and the Kubernetes client."""
