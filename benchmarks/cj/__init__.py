"""CJ assessment benchmarks: Bradley-Terry fitting, pair planning, callback throughput, monitor."""
