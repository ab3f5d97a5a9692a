"""Notifications (docs/notifications.md): recipients with their local time, quiet hours and
preferences; versioned templates; channels (SMTP e-mail, webhooks, an in-app inbox, a log);
``app.notify`` turning one call into one durable delivery job per channel.

``model`` holds the shared values; ``recipients``, ``templates``, ``channels`` and ``service``
the parts built on them.
"""
