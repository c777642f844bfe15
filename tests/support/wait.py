"""Polling with a deadline (shared with the benchmarks: surge_testbed.wait)."""

from surge_testbed.wait import StopWaitingError, WaitTimeoutError, holds_for, wait_until

__all__ = ["StopWaitingError", "WaitTimeoutError", "holds_for", "wait_until"]
