"""RSS and Atom feeds polled into articles: configured ``[[feeds]]`` and admin-added ones.

``parse`` turns a document into articles (no I/O), ``poll`` is the scheduled job,
``state`` what a node remembers of each feed, ``store`` the admin-added feeds' table,
``schedule`` keeps the scheduler's jobs in step with both lists, ``api`` is ``/api/feeds``.
"""
