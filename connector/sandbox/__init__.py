"""A local Dataverse-compatible server with realistic seed data, for demos and integration tests."""
