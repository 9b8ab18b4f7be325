"""registry.server.grpc."""
