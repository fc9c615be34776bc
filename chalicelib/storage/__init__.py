"""DynamoDB access: one table, keyed by tenant first. keys.py lists every access pattern."""
