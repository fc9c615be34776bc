"""The stack's building blocks, one construct per concern: storage, queues, configuration, secrets,
monitoring."""
