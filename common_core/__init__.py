"""Event contracts, topic registry, error model and the shared runtime of HuleEdu services."""
