"""Running as several processes and nodes: who leads the scheduler, and the supervisor of
``ticker serve --processes N``."""
