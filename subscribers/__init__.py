"""Web Push: the browser side (``pages``: ``/push.js``, ``/sw.js``) and the server side:
subscriptions, VAPID keys, alerts and their delivery (RFC 8030/8291/8292).

Server side: the core (``policy``, ``payload``, ``validate``, ``endpoints``, ``ratelimit``,
``encrypt``) takes and returns values; ``store``/``alerts`` hold the SQL, ``sender``/``engine``
move bytes, ``api`` is the HTTP surface and ``setup.setup_push(app)`` wires it all.
"""
