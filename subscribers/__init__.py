"""Web Push: the browser side (``pages``: ``/push.js``, ``/sw.js``) and the server side:
subscriptions, VAPID keys, alerts and their delivery (RFC 8030/8291/8292).

Server side: the core (``policy``, ``payload``, ``validate`` (the request models),
``endpoints``, ``ratelimit``, ``encrypt``) takes and returns values and raises the errors of
``errors`` (push's rows of the error table); ``store``/``alerts`` hold the SQL,
``sender``/``engine`` move bytes, ``web.api`` is the HTTP surface (``web.schemas``: its
answers and OpenAPI operations) and ``setup.setup_push(app)`` wires it all.
"""
