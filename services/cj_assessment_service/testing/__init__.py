"""Test support shipped with the service, used by its tests, the repository's cross-service tests
and the benchmarks: in-memory fakes of the unit of work and its stores (`fakes`), settings,
requests, verdicts and a scripted judge (`requests`), the service run in the test's event loop
(`harness`) and as a subprocess (`process`)."""
