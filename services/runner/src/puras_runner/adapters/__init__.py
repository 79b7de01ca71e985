"""The runner's adapters: NATS, the bundle store, uv, processes and the filesystem."""
