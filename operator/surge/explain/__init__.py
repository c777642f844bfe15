"""`surge explain`: a policy's last decision in words (render.py is pure, cli.py reads the cluster)."""
