"""Platform sandbox: contract fakes of Telegram and Mastodon on loopback, with fault injection and a page
that shows what was posted, for tests, benchmarks, demos and the local stack."""

from devtools.sandbox.faults import Fault, FaultError
from devtools.sandbox.server import Sandbox

__all__ = ["Fault", "FaultError", "Sandbox"]
