"""`surge simulate`: replay a policy on a demand trace offline, through the operator's own pure engine.

The fleet model (`fleet`), the tiny Prometheus (`promql`), the loop (`loop`), outputs (`output`) and the
command (`cli`). `surge.decision` never imports this package; this package only calls it.
"""
