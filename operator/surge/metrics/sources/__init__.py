"""One module per metric type; registered in surge.metrics.registry."""
