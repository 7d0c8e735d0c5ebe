"""CJ assessment benchmarks: Bradley-Terry fitting, pair planning, position bias, callback
throughput, monitor."""
