"""The local world vmgen is tested and demonstrated against.

Everything here is real software running on this machine: a kube-apiserver and etcd built from their
Go modules, an ARM Compute simulator that the real Azure SDK talks to over TLS, and Debian guest
sandboxes running the real OpenSSH and Azure Linux Agent. The operator (`vmgen`) never imports this
package; an import-linter contract enforces that.
"""
