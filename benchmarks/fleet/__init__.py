"""Scale-out benchmarks: the services run as several instances on one broker and one database."""
