"""Citizens' messages coming in: the webhooks that store each platform event on the inbox lane and
answer at once (telegram.py, meta.py, webhook.py, queue.py), and the consumer that turns the events
into threaded, flagged and, where configured, automatically answered messages (process.py)."""
