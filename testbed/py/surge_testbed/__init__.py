"""Helpers shared by the tests and the benchmarks: polling with a deadline, workload builders, and the
test bed's environment (`testbed/cluster.sh env`). Importable by both; imports neither."""
