"""What an alert will look like before it is sent (pure): payload, byte and character budgets.

The byte budget is the push services' (:mod:`subscribers.delivery.payload`): a payload that
does not fit is refused at send time, so the preview says how much is left. The character
counts are softer: lock screens and notification centres cut a longer title or body with
"...". The limits are the shortest common ones, from Batch's per-browser guide ("What is the
optimal length for every web push notification?", doc.batch.com: macOS shows a title of
about 35-40 characters on one line; Windows' Chromium format shows a body of up to 140
characters in four lines) and the per-platform table at webpushnotifications.xyz
("Push Notification Character Limit by OS & Browser": Android Chrome shows 30 / 65 when
collapsed, more once expanded). Going over is allowed: the editor sees it, the send works.
"""

from __future__ import annotations

import json
from typing import Any

from subscribers.delivery.payload import MAX_ENCRYPTED_BYTES, encrypted_size
from subscribers.validate import WORST_CASE_ALERT_ID, AlertIn

TITLE_SHOWN = 40
BODY_SHOWN = 140


def preview(alert: AlertIn, audience: int) -> dict[str, Any]:
    """The ``POST /api/alerts/preview`` answer for ``alert`` reaching ``audience`` readers.

    The alert's id is not known before it is created: the payload carries the widest id
    (:data:`WORST_CASE_ALERT_ID`), so ``bytes`` is what the largest real one costs.
    """
    payload = alert.notification(WORST_CASE_ALERT_ID).encode()
    size = encrypted_size(len(payload))
    return {"payload": json.loads(payload), "bytes": size, "maxBytes": MAX_ENCRYPTED_BYTES,
            "bytesLeft": MAX_ENCRYPTED_BYTES - size, "fits": size <= MAX_ENCRYPTED_BYTES,
            "audience": audience,
            "title": {"chars": len(alert.title), "max": TITLE_SHOWN},
            "body": {"chars": len(alert.body), "max": BODY_SHOWN}}
