"""The REST/JSON gateway: web and mobile clients in, identity (gRPC) out."""
