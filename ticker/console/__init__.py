"""The editors' console: who may log in (users), their sessions, and the login limits.

Storage and rules only; the HTTP side is in ``ticker.console.routes`` (login, logout,
session), ``ticker.console.admin`` (users, tokens, audit) and ``ticker.console.page``
(``/editor``). ``ticker.web.auth.require_token`` accepts a session cookie through
:mod:`ticker.console.sessions`.
"""
