"""WS-Management envelopes for the Windows endpoint: read a request, write answers and faults.

Only what a PowerShell remoting client sends is understood: the shell resource
`http://schemas.microsoft.com/powershell/Microsoft.PowerShell` with Create, Command, Send, Receive, Signal
and Delete. Every answer's `wsa:RelatesTo` echoes the request's `wsa:MessageID` (pypsrp refuses an answer
that does not), and faults carry the WSManFault code Windows uses, so a client's error handling meets the
same numbers: 2150858793 for an OperationTimeout that passed with no output (pypsrp retries it silently),
2150858843 for an unknown shell, 2150858752 for an unknown action.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "FAULT_INVALID_SELECTORS",
    "FAULT_TIMED_OUT",
    "NS",
    "POWERSHELL_URI",
    "Request",
    "WsmanFault",
    "answer",
    "fault",
    "parse",
]

POWERSHELL_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "pwsh": "http://schemas.microsoft.com/powershell",
}
_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
ACTIONS = {
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create": "Create",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete": "Delete",
    f"{_SHELL}/Command": "Command",
    f"{_SHELL}/Send": "Send",
    f"{_SHELL}/Receive": "Receive",
    f"{_SHELL}/Signal": "Signal",
}
_RESPONSE_ACTIONS = {
    "Create": "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
    "Delete": "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse",
    "Command": f"{_SHELL}/CommandResponse",
    "Send": f"{_SHELL}/SendResponse",
    "Receive": f"{_SHELL}/ReceiveResponse",
    "Signal": f"{_SHELL}/SignalResponse",
}
COMMAND_DONE = f"{_SHELL}/CommandState/Done"
COMMAND_RUNNING = f"{_SHELL}/CommandState/Running"
FAULT_TIMED_OUT = 2150858793
FAULT_INVALID_SELECTORS = 2150858843
FAULT_ACTION_NOT_SUPPORTED = 2150858752
_DURATION = re.compile(r"^PT(?P<seconds>\d+(?:\.\d+)?)S$")

for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)


class WsmanFault(Exception):
    def __init__(self, code: int, subcode: str, message: str) -> None:
        super().__init__(message)
        self.code, self.subcode, self.message = code, subcode, message


@dataclass(frozen=True)
class Request:
    action: str  # "Create", "Command", ...
    message_id: str
    resource_uri: str
    shell_id: str | None
    max_envelope_size: int
    operation_timeout: float
    body: ET.Element


def parse(xml: bytes) -> Request:
    try:
        envelope = ET.fromstring(xml)
    except ET.ParseError as error:
        raise WsmanFault(FAULT_ACTION_NOT_SUPPORTED, "w:InvalidMessage", f"not XML: {error}") from None
    header = envelope.find("s:Header", NS)
    body = envelope.find("s:Body", NS)
    if header is None or body is None:
        raise WsmanFault(FAULT_ACTION_NOT_SUPPORTED, "w:InvalidMessage", "no SOAP header or body")
    action_uri = header.findtext("wsa:Action", "", NS)
    action = ACTIONS.get(action_uri)
    if action is None:
        raise WsmanFault(
            FAULT_ACTION_NOT_SUPPORTED, "wsa:ActionNotSupported", f"The action {action_uri} is not supported."
        )
    selector = header.find("wsman:SelectorSet/wsman:Selector[@Name='ShellId']", NS)
    timeout = _DURATION.match(header.findtext("wsman:OperationTimeout", "PT20S", NS))
    return Request(
        action=action,
        message_id=header.findtext("wsa:MessageID", "", NS),
        resource_uri=header.findtext("wsman:ResourceURI", "", NS),
        shell_id=selector.text.upper() if selector is not None and selector.text else None,
        max_envelope_size=int(header.findtext("wsman:MaxEnvelopeSize", "153600", NS)),
        operation_timeout=float(timeout["seconds"]) if timeout else 20.0,
        body=body,
    )


def _envelope(action: str, relates_to: str) -> tuple[ET.Element, ET.Element]:
    envelope = ET.Element(f"{{{NS['s']}}}Envelope")
    header = ET.SubElement(envelope, f"{{{NS['s']}}}Header")
    ET.SubElement(header, f"{{{NS['wsa']}}}Action").text = action
    ET.SubElement(header, f"{{{NS['wsa']}}}MessageID").text = f"uuid:{str(uuid.uuid4()).upper()}"
    ET.SubElement(
        header, f"{{{NS['wsa']}}}To"
    ).text = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
    ET.SubElement(header, f"{{{NS['wsa']}}}RelatesTo").text = relates_to
    return envelope, ET.SubElement(envelope, f"{{{NS['s']}}}Body")


def answer(request: Request, *children: ET.Element) -> bytes:
    envelope, body = _envelope(_RESPONSE_ACTIONS[request.action], request.message_id)
    body.extend(children)
    return bytes(ET.tostring(envelope, encoding="utf-8", xml_declaration=False))


def fault(relates_to: str, error: WsmanFault, machine: str) -> bytes:
    envelope, body = _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to)
    soap = NS["s"]
    element = ET.SubElement(body, f"{{{soap}}}Fault")
    code = ET.SubElement(element, f"{{{soap}}}Code")
    ET.SubElement(code, f"{{{soap}}}Value").text = "s:Receiver"
    ET.SubElement(ET.SubElement(code, f"{{{soap}}}Subcode"), f"{{{soap}}}Value").text = error.subcode
    reason = ET.SubElement(element, f"{{{soap}}}Reason")
    ET.SubElement(
        reason, f"{{{soap}}}Text", {"{http://www.w3.org/XML/1998/namespace}lang": "en-US"}
    ).text = error.message
    detail = ET.SubElement(element, f"{{{soap}}}Detail")
    wsman_fault = ET.SubElement(
        detail, f"{{{NS['wsmanfault']}}}WSManFault", {"Code": str(error.code), "Machine": machine}
    )
    ET.SubElement(wsman_fault, f"{{{NS['wsmanfault']}}}Message").text = error.message
    return bytes(ET.tostring(envelope, encoding="utf-8", xml_declaration=False))


def rsp(tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.Element(f"{{{NS['rsp']}}}{tag}", attributes)
    element.text = text
    return element


def shell_created(request: Request, shell_id: str, address: str, client_ip: str) -> bytes:
    created = ET.Element(f"{{{NS['wst']}}}ResourceCreated")
    ET.SubElement(created, f"{{{NS['wsa']}}}Address").text = address
    parameters = ET.SubElement(created, f"{{{NS['wsa']}}}ReferenceParameters")
    ET.SubElement(parameters, f"{{{NS['wsman']}}}ResourceURI").text = POWERSHELL_URI
    selectors = ET.SubElement(parameters, f"{{{NS['wsman']}}}SelectorSet")
    ET.SubElement(selectors, f"{{{NS['wsman']}}}Selector", {"Name": "ShellId"}).text = shell_id
    shell = rsp("Shell")
    for tag, text in (
        ("ShellId", shell_id),
        ("ResourceUri", POWERSHELL_URI),
        ("Owner", "azureuser"),
        ("ClientIP", client_ip),
        ("IdleTimeOut", "PT7200.000S"),
        ("InputStreams", "stdin pr"),
        ("OutputStreams", "stdout"),
        ("ShellRunTime", "P0DT0H0M0S"),
        ("ShellInactivity", "P0DT0H0M0S"),
    ):
        shell.append(rsp(tag, text))
    return answer(request, created, shell)
