"""Local infrastructure processes (nats-server, Postgres) for the dev stack and the tests."""
