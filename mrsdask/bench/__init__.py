"""Benchmarks that run mrsdask and the official pipeline side by side on the same inputs."""
