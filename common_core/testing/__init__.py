"""Test support shared by every service's tests: waiting for conditions, reading topics."""

from common_core.testing.kafka_reading import read_topic
from common_core.testing.waiting import eventually

__all__ = ["eventually", "read_topic"]
