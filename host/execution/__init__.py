"""Orders after risk: intents, their lifecycle, venues (paper, gRPC) and the execution engine."""
