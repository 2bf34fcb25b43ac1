"""The Windows guest's WinRM endpoint: `/wsman` over HTTP (like 5985) and HTTPS (like 5986), in a thread.

Like the ARM simulator, an aiohttp server runs in a thread with its own event loop, so tests may block
(pypsrp is synchronous) while it serves. One endpoint serves one `WindowsMachine`; each PowerShell shell
is a `psrp_host.PsrpShell`. HTTPS uses a certificate from the testbed CA (`trustme`) for the machine's
address; NTLM is offered on both, with WinRM message encryption required on plain HTTP (Windows'
AllowUnencrypted=false), and Basic on HTTPS only unless `allow_basic_http` (the only way to prove that
the operator refuses Basic over HTTP before it sends anything).

Power follows the VM: `stop_answering()` closes the listening sockets and every open connection (a
deallocated VM refuses connections), `start_answering()` listens again on the same ports.

Traps avoided: a Receive with nothing to say waits for OperationTimeout and then answers WSMan fault
2150858793, as Windows does (pypsrp retries it silently), never an empty success; a command whose model
says "drop the connection" (the CONNECTION_DROPPED failure mode) gets its transport aborted after the
script ran, which is what a VM rebooting under the operator looks like.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from vmgen_testbed.windows import wsman
from vmgen_testbed.windows.auth import ConnectionAuth, CredentialFile, tls_channel_bindings
from vmgen_testbed.windows.machine import WindowsMachine
from vmgen_testbed.windows.psrp_host import PsrpShell

__all__ = ["WinRmEndpoint"]

_ENVELOPE_OVERHEAD = 2048  # our Receive answer's SOAP around the base64 payload, with room to spare
_POLL = 0.02


class _Drop(Exception):
    """Abort the connection instead of answering."""


class WinRmEndpoint:
    def __init__(
        self,
        machine: WindowsMachine,
        *,
        ca: trustme.CA,
        state_dir: Path,
        host: str = "127.0.0.1",
        username: str = "azureuser",
        password: str,
        domain: str = "",
        allow_basic_http: bool = False,
    ) -> None:
        self.machine = machine
        self.host, self.username, self.password = host, username, password
        self.allow_basic_http = allow_basic_http
        self.http_port = self.https_port = 0
        self._leaf = ca.issue_cert(host, "127.0.0.1", "localhost")
        self._bindings = tls_channel_bindings(
            ssl.PEM_cert_to_DER_cert(self._leaf.cert_chain_pems[0].bytes().decode())
        )
        # The password in force: a user already known in this process keeps its first one.
        self.password = CredentialFile.add(state_dir, domain, username, password)
        self._shells: dict[str, PsrpShell] = {}
        self._connections: dict[Any, ConnectionAuth] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sites: list[web.TCPSite] = []
        self.requests = 0  # every POST to /wsman, answered or not (tests: "nothing reached the guest")
        self.largest_answer = 0  # bytes of the largest SOAP answer (tests: bounded by MaxEnvelopeSize)

    def __repr__(self) -> str:  # never the password
        return f"WinRmEndpoint({self.machine.name}, http={self.http_port}, https={self.https_port})"

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> WinRmEndpoint:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as error:  # reported to the caller of start()
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close_sites())
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name=f"winrm-{self.machine.name}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise RuntimeError(f"the WinRM endpoint of {self.machine.name} could not start") from failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread, self._loop = None, None

    def __enter__(self) -> WinRmEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop_answering(self) -> None:
        self._call(self._close_sites())

    def start_answering(self) -> None:
        self._call(self._open_sites())

    def _call(self, work: Any) -> None:
        if self._loop is None:  # stopped for good (end of test): a late power event has nothing to do
            work.close()
            return
        asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=30)

    async def _serve(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/wsman", self._wsman)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await self._open_sites()

    async def _open_sites(self) -> None:
        if self._sites:
            return
        assert self._runner is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(context)
        http = web.TCPSite(self._runner, self.host, self.http_port)
        https = web.TCPSite(self._runner, self.host, self.https_port, ssl_context=context)
        await http.start()
        await https.start()
        self._sites = [http, https]
        self.http_port = _port(http)
        self.https_port = _port(https)

    async def _close_sites(self) -> None:
        for site in self._sites:
            await site.stop()
        self._sites = []
        for transport in list(self._connections):
            transport.abort()
        self._connections.clear()
        self._shells.clear()  # a powered-off machine forgets its sessions

    # ---- requests -------------------------------------------------------------------------------

    def _auth_of(self, request: web.Request) -> ConnectionAuth:
        for transport in [t for t in self._connections if t.is_closing()]:
            del self._connections[transport]
        transport = request.transport
        state = self._connections.get(transport)
        if state is None:
            https = request.secure
            state = ConnectionAuth(
                https=https,
                basic_allowed=https or self.allow_basic_http,
                bindings=self._bindings if https else None,
            )
            self._connections[transport] = state
        return state

    async def _wsman(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        auth = self._auth_of(request)
        body = await request.read()
        result = auth.authenticate(request.headers.get("Authorization"))
        if not result.authenticated:
            return web.Response(status=401, headers={"WWW-Authenticate": result.challenge or auth.offers()})
        if not body:
            return web.Response(status=200)  # the body-less request that sets up the NTLM context
        encrypted = request.content_type.startswith("multipart/")
        if not encrypted and not request.secure and auth.context is not None:
            # Windows' AllowUnencrypted=false: NTLM over HTTP must wrap every message.
            return web.Response(status=401, headers={"WWW-Authenticate": auth.offers()})
        xml = auth.unwrap(body) if encrypted else body
        status, relates_to = 200, ""
        try:
            parsed = wsman.parse(xml)
            relates_to = parsed.message_id
            answer = await self._dispatch(parsed, request)
        except wsman.WsmanFault as error:
            status = 500
            answer = wsman.fault(relates_to, error, self.machine.name)
        except _Drop:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        self.largest_answer = max(self.largest_answer, len(answer))
        if encrypted:
            content_type, payload = auth.wrap(answer)
            return web.Response(status=status, body=payload, headers={"Content-Type": content_type})
        return web.Response(status=status, body=answer, content_type="application/soap+xml", charset="utf-8")

    async def _dispatch(self, request: wsman.Request, http: web.Request) -> bytes:
        if request.resource_uri != wsman.POWERSHELL_URI:
            raise wsman.WsmanFault(
                wsman.FAULT_INVALID_SELECTORS,
                "w:InvalidResourceURI",
                f"The WS-Management service cannot process the request: unknown resource "
                f"{request.resource_uri}",
            )
        limit = max((request.max_envelope_size - _ENVELOPE_OVERHEAD) * 3 // 4, 64)
        if request.action == "Create":
            element = request.body.find("rsp:Shell", wsman.NS)
            creation = request.body.find("rsp:Shell/pwsh:creationXml", wsman.NS)
            if element is None or creation is None or not creation.text:
                raise wsman.WsmanFault(wsman.FAULT_INVALID_SELECTORS, "w:InvalidParameter", "no creationXml")
            shell = PsrpShell(self.machine, payload_limit=limit)
            if element.get("ShellId"):
                shell.shell_id = element.get("ShellId", "").upper()
            shell.create(base64.b64decode(creation.text))
            self._shells[shell.shell_id] = shell
            address = f"{http.scheme}://{http.host}/wsman"
            return wsman.shell_created(request, shell.shell_id, address, http.remote or "")
        found = self._shells.get(request.shell_id or "")
        if found is None:
            raise wsman.WsmanFault(
                wsman.FAULT_INVALID_SELECTORS,
                "w:InvalidSelectors",
                "The WS-Management service cannot process the request because the request contained invalid "
                "selectors for the resource.",
            )
        shell = found
        shell.payload_limit = limit
        if request.action == "Delete":
            del self._shells[shell.shell_id]
            return wsman.answer(request)
        if request.action == "Command":
            line = request.body.find("rsp:CommandLine", wsman.NS)
            arguments = request.body.findtext("rsp:CommandLine/rsp:Arguments", "", wsman.NS)
            command_id = (line.get("CommandId") if line is not None else None) or ""
            if not command_id or not arguments:
                raise wsman.WsmanFault(wsman.FAULT_INVALID_SELECTORS, "w:InvalidParameter", "no CommandId")
            shell.command(command_id, base64.b64decode(arguments))
            return wsman.answer(request, _wrap("CommandResponse", wsman.rsp("CommandId", command_id.upper())))
        if request.action == "Send":
            for stream in request.body.findall("rsp:Send/rsp:Stream", wsman.NS):
                shell.send(base64.b64decode(stream.text or ""), stream.get("CommandId"))
            return wsman.answer(request, wsman.rsp("SendResponse"))
        if request.action == "Signal":
            signal = request.body.find("rsp:Signal", wsman.NS)
            command_id = signal.get("CommandId", "") if signal is not None else ""
            shell.signal(command_id, request.body.findtext("rsp:Signal/rsp:Code", "", wsman.NS))
            return wsman.answer(request, wsman.rsp("SignalResponse"))
        return await self._receive(request, shell, limit)

    async def _receive(self, request: wsman.Request, shell: PsrpShell, limit: int) -> bytes:
        desired = request.body.find("rsp:Receive/rsp:DesiredStream", wsman.NS)
        command_id = desired.get("CommandId") if desired is not None else None
        if command_id and shell.drops_connection(command_id):
            raise _Drop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.operation_timeout
        while True:
            data = shell.take(command_id, limit)
            done = command_id is not None and shell.command_done(command_id)
            if data or done:
                break
            if loop.time() >= deadline:
                raise wsman.WsmanFault(
                    wsman.FAULT_TIMED_OUT,
                    "w:TimedOut",
                    "The WS-Management service cannot complete the operation within the time specified in "
                    "OperationTimeout.",
                )
            await asyncio.sleep(_POLL)
        response = wsman.rsp("ReceiveResponse")
        attributes = {"Name": "stdout", **({"CommandId": command_id.upper()} if command_id else {})}
        if data:
            response.append(wsman.rsp("Stream", base64.b64encode(data).decode(), **attributes))
        if command_id:
            state = wsman.COMMAND_DONE if done else wsman.COMMAND_RUNNING
            response.append(wsman.rsp("CommandState", None, CommandId=command_id.upper(), State=state))
        return wsman.answer(request, response)


def _wrap(tag: str, *children: Any) -> Any:
    element = wsman.rsp(tag)
    element.extend(children)
    return element


def _port(site: web.TCPSite) -> int:
    server: Any = site._server
    assert server is not None and server.sockets
    return int(server.sockets[0].getsockname()[1])
