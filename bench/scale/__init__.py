"""Scale benchmark: how many AutoScalePolicies one Surge operator process keeps at their interval.

`python -m bench.scale run` (or `make bench-scale`, which brings up and tears down its own cluster).
"""
