"""Configuration: one YAML file validated into typed models (models.py), loaded by loader.py."""
