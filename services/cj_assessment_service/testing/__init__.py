"""Test support shipped with the service: in-memory fakes of its unit of work and stores."""
