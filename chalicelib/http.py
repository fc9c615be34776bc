"""The one HTTP session factory: timeouts, connection pooling, bounded redirects, a User-Agent.

Retries are not done here: each caller owns its retry policy (SQS redelivery for posts, the next
schedule for feeds), so a request is never silently repeated under a platform without idempotency.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

USER_AGENT = "Banditore/0.1 (+https://github.com/banditore; municipal news publisher)"
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0
TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)
MAX_REDIRECTS = 3


def new_session(*, pool_size: int = 10) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = MAX_REDIRECTS
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
