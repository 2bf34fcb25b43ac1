"""The testbed's Windows guest: a modelled Windows machine behind a real WinRM/PSRP endpoint."""
