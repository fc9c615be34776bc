"""Publishing: announcements become deliveries, queued per lane, posted by the publisher."""
