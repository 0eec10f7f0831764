"""The newsroom: articles in (the CMS's signed webhook, polled RSS/Atom feeds), routed to
the headlines channels, and breaking ones handed to the alert policy."""
