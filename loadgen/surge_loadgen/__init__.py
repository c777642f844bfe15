"""Surge's trace-driven load generator: scenarios (demand traces), a real (TCP bots) and a simulated (KWOK)
data plane, and the run summary/timeline. Metric names and the capacity formula come from
`surge_game.vocabulary`.
"""

__version__ = "0.1.0"
