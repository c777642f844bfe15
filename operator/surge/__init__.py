"""Surge: a Kubernetes autoscaler for bursty, player-driven workloads."""

__version__ = "0.1.0"
