"""Benchmarks of the transport against grpcio's raw-bytes floor and its peers."""
