"""Outbound HTTP that can only reach the public internet (feeds, data sources, push).

:mod:`ticker.net.addresses` says which addresses are public and which origins an operator
exempted; :mod:`ticker.net.client` builds the aiohttp session that enforces it at every
connect and follows redirects by hand, checking each hop.
"""
