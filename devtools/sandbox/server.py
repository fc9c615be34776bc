"""The sandbox: one ThreadingHTTPServer on loopback serving every platform fake (devtools.sandbox.fakes),
the control API under /_sandbox/ and the page at /; started and stopped in-process."""

from __future__ import annotations

import json
import re
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from devtools.sandbox.fakes import Answer, PlatformFake, build_fakes
from devtools.sandbox.faults import SERVER_KINDS, Fault, FaultError
from devtools.sandbox.mastodon import MastodonFake
from devtools.sandbox.meta import FacebookFake
from devtools.sandbox.page import render_page
from devtools.sandbox.state import SandboxState
from devtools.sandbox.telegram import TelegramFake
from devtools.sandbox.wire import Reply, Request, html_reply, json_reply

_PLATFORM_PATH = re.compile(r"/([a-z]+)(/.*)?")
FakeT = TypeVar("FakeT")


class Sandbox:
    """Contract fakes of every platform on 127.0.0.1 (port 0: a free one), each under /{platform}.

        with Sandbox() as sandbox:
            channel.api_base = sandbox.base_for("telegram")     # .../telegram
            channel.instance = sandbox.base_for("mastodon")     # .../mastodon
            sandbox.inject("mastodon", "rate_limit", count=2, retry_after=30)

    Any token is accepted unless revoked with `revoke_token`. Faults can also be set over HTTP:
    POST /_sandbox/faults with the same fields as `inject` (see faults.Fault). `latency` (seconds,
    settable at any time) delays every platform answer, as a real API's round trip does: benchmarks
    use it to see how many workers it takes to keep up with a slow platform."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        enforce_rate_limits: bool = False,
        latency: float = 0.0,
    ) -> None:
        self.state = SandboxState(enforce_rate_limits=enforce_rate_limits)
        self.latency = latency
        self.fakes: dict[str, PlatformFake] = build_fakes(self.state, lambda: self.url)
        self._address = (host, port)
        self._server: _Server | None = None
        self._stopping = threading.Event()

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self._address, _Handler, self)
            threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="sandbox", daemon=True
            ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._stopping.set()  # wakes delayed answers, which then drop their connection
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def base_for(self, platform: str) -> str:
        """Where a channel of this platform points its API base (instance, homeserver...)."""
        if platform not in self.fakes:
            raise KeyError(f"the sandbox has no {platform} fake")
        return f"{self.url}/{platform}"

    @property
    def telegram_api_base(self) -> str:
        return self.base_for("telegram")

    @property
    def mastodon_instance(self) -> str:
        return self.base_for("mastodon")

    @property
    def mastodon(self) -> MastodonFake:
        return self.fake("mastodon", MastodonFake)

    def fake(self, platform: str, kind: type[FakeT]) -> FakeT:
        """The platform's fake as its own class, for the settings and records a test reaches into."""
        fake = self.fakes[platform]
        if not isinstance(fake, kind):
            raise TypeError(f"the {platform} fake is not a {kind.__name__}")
        return fake

    # -- control --------------------------------------------------------------------------------
    def inject(self, platform: str, kind: str, **options: Any) -> Fault:
        """Make calls fail: `count=N` (the next N) or `rate=0.3, seed=7`; `endpoint`, `delay`,
        `retry_after` as in faults.Fault."""
        return self.state.faults.add(self._checked(Fault(platform=platform, kind=kind, **options)))

    def _checked(self, fault: Fault) -> Fault:
        fake = self.fakes.get(fault.platform)
        if fake is None:
            raise FaultError(f"platform must be one of {', '.join(self.fakes)}")
        fault.endpoint = fault.endpoint or fake.posting_endpoint
        if fault.kind in SERVER_KINDS:
            return fault
        try:
            # Building the answer is pure: a kind this platform has no shape for is refused now,
            # not with a crash when the fault strikes.
            fake.fault_reply(fault)
        except KeyError:
            raise FaultError(f"{fake.title} has no fault of kind {fault.kind!r}") from None
        return fault

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def revoke_token(self, platform: str, token: str) -> None:
        """From now on the platform answers this token with 401."""
        self.state.revoke(platform, token)

    def restore_token(self, platform: str, token: str) -> None:
        """The platform accepts this token again (a revoked one, replaced by a human)."""
        self.state.restore(platform, token)

    def set_mastodon_limits(self, *, max_characters: int, characters_reserved_per_url: int = 23) -> None:
        self.mastodon.max_characters = max_characters
        self.mastodon.characters_reserved_per_url = characters_reserved_per_url

    def posts(self, platform: str | None = None) -> list[dict[str, Any]]:
        return [post.to_json() for post in self.state.posts(platform)]

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def reset(self) -> None:
        """Forget posts, counts, faults, revoked tokens and limit changes."""
        self.state.reset()
        for fake in self.fakes.values():
            fake.reset()
        self.set_mastodon_limits(max_characters=500)

    def wait(self, seconds: float) -> bool:
        """Sleep unless the sandbox stops meanwhile; True when it is stopping."""
        return self._stopping.wait(seconds)

    # -- requests -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        path = request.path
        if path == "/" and request.method == "GET":
            return html_reply(
                200, render_page(self.fakes, self.state.posts(), self.stats(), self.state.faults.to_json())
            )
        if path.startswith("/_sandbox/"):
            return self._control(request)
        match = _PLATFORM_PATH.fullmatch(path)
        fake = self.fakes.get(match.group(1)) if match else None
        if fake is None or match is None:
            return json_reply(404, {"error": f"nothing at {path}"})
        routed = fake.route(request, match.group(2) or "/")
        if routed is None:
            self.state.count_request(fake.platform, "other")
            return json_reply(404, {"error": f"no {fake.title} endpoint at {path}"})
        endpoint, answer = routed
        return self._platform_call(fake, endpoint, answer)

    def _platform_call(self, fake: PlatformFake, endpoint: str, answer: Answer) -> Reply:
        self.state.count_request(fake.platform, endpoint)
        reply = self._answer_or_fault(fake.platform, endpoint, answer, fake.fault_reply)
        reply.delay += self.latency  # on top of a fault's own delay: the network is slow for it too
        return reply

    def _answer_or_fault(
        self, platform: str, endpoint: str, answer: Callable[[], Reply], fault_reply: Callable[[Fault], Reply]
    ) -> Reply:
        fault = self.state.faults.strike(platform, endpoint)
        if fault is None:
            return answer()
        self.state.count_fault(fault)
        if fault.kind not in SERVER_KINDS:
            return fault_reply(fault)
        reply = answer()  # the platform acts, then its answer is late: the client may die meanwhile
        reply.delay = fault.delay
        return reply

    def _control(self, request: Request) -> Reply:
        routes: dict[tuple[str, str], Callable[[], Reply]] = {
            ("GET", "posts"): lambda: json_reply(200, self.posts(request.query_value("platform"))),
            ("GET", "stats"): lambda: json_reply(200, self.stats()),
            ("GET", "faults"): lambda: json_reply(200, self.state.faults.to_json()),
            ("POST", "faults"): lambda: self._add_faults(request),
            ("DELETE", "faults"): lambda: self._done(self.clear_faults),
            ("POST", "reset"): lambda: self._done(self.reset),
            ("POST", "revoke"): lambda: self._revoke(request),
            ("POST", "citizen"): lambda: self._citizen(request),
        }
        action = routes.get((request.method, request.path.removeprefix("/_sandbox/")))
        if action is None:
            return json_reply(404, {"error": f"no sandbox route {request.method} {request.path}"})
        return action()

    def _add_faults(self, request: Request) -> Reply:
        """One fault object or a list of them."""
        try:
            data = json.loads(request.body or b"null")
            items = data if isinstance(data, list) else [data]
            faults = [self._checked(Fault.from_json(item)) for item in items]
        except (ValueError, FaultError) as exc:
            return json_reply(400, {"error": str(exc)})
        for fault in faults:
            self.state.faults.add(fault)
        return json_reply(201, {"faults": self.state.faults.to_json()})

    def _revoke(self, request: Request) -> Reply:
        payload = request.payload() or {}
        platform, token = payload.get("platform"), payload.get("token")
        if not isinstance(platform, str) or not isinstance(token, str) or not token:
            return json_reply(400, {"error": "give platform and token"})
        self.revoke_token(platform, token)
        return json_reply(200, {"revoked": platform})

    def _citizen(self, request: Request) -> Reply:
        """Make a platform fake know a citizen's message before its webhook reaches Banditore, as the
        real platform does (an answer can then reply to it): what devtools/sandbox/citizens.py sends
        from another process while `banditore run` is up."""
        payload = request.payload() or {}
        try:
            made = self._register_citizen(payload)
        except (KeyError, TypeError, ValueError) as exc:
            return json_reply(400, {"error": f"give the platform and the message's ids ({exc})"})
        return json_reply(201, {"registered": made})

    def _register_citizen(self, payload: dict[str, Any]) -> str:
        platform = payload["platform"]
        if platform == "telegram":
            message = self.fake("telegram", TelegramFake).citizen_message(
                int(payload["chat_id"]),
                "",
                user_id=int(payload["user_id"]),
                message_id=int(payload["message_id"]),
            )
            return str(message["message_id"])
        if platform == "facebook" and "comment_id" in payload:
            facebook = self.fake("facebook", FacebookFake)
            return facebook.citizen_comment(str(payload["post_id"]), comment_id=str(payload["comment_id"]))
        if platform == "facebook":
            return self.fake("facebook", FacebookFake).citizen_message(
                str(payload["page_id"]), str(payload["person"])
            )
        raise ValueError(f"no citizens on {platform}")

    @staticmethod
    def _done(action: Callable[[], None]) -> Reply:
        action()
        return json_reply(200, {"ok": True})


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a delayed answer never keeps the process alive
    # socketserver's default backlog of 5 drops connections when many publisher workers start at
    # once (a benchmark's 50); a real API accepts the burst.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sandbox: Sandbox
    ) -> None:
        self.sandbox = sandbox
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS query that can hang without a network.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs: benchmarks reuse connections
    # Headers and body leave in two writes; with Nagle on, the body waits for the client's delayed
    # ACK of the headers (~40 ms a request on loopback), which real APIs do not add.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:  # Matrix sends messages with PUT
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines carry Telegram tokens; /_sandbox/stats and the page say what happened."""

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=parts.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            query=parse_qs(parts.query),
        )
        reply = self.server.sandbox.handle(request)
        if reply.delay and self.server.sandbox.wait(reply.delay):
            self.close_connection = True  # stopping: drop the late answer
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped waiting (a timeout)
