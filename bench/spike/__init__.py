"""bench-spike (issue 5, part 1): the real HPA and Surge side by side on the same launch spike.

Five contenders (manifests/bench/spike/) each scale an identical game fleet in its own namespace; one load
generator replays the same trace against all fleets concurrently, on one embedded cluster, several rounds
with random start offsets. Outputs: out/bench-spike/<trace>-x<time scale>/ (per round and contender:
timeline.csv, summary.json, timeline.png; results.json, overlay.png), and the Spike section of
bench/RESULTS.md from bench/spike/results/*.json.
"""
