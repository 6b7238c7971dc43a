"""Orders after risk: venues (paper, gRPC), the in-memory book and the execution engine.

The order model itself (intents, their lifecycle, working orders) lives in ``host.orders``, below
this package, so risk and the ledger use it without depending on execution.
"""
