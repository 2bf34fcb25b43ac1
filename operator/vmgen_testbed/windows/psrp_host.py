"""One PowerShell shell (a PSRP runspace pool) of the Windows endpoint, on psrpcore's sans-IO server classes.

The WS-Management layer hands this module the raw PSRP bytes of a shell's creationXml, of a Command's
first argument and of every Send, and asks it for the bytes to put in a Receive. psrpcore parses the
client's fragments, answers the runspace pool negotiation and packs our output, errors and pipeline
states into fragments, so nothing here is hand-packed.

Traps avoided (each found by the prototype):
- The ServerPipeline must exist before the Command's argument is fed to the pool: psrpcore routes the
  CreatePipeline message to a pipeline it already knows, and fails otherwise.
- `data_to_send()` yields payloads for whichever target comes first; a Receive is for one target (the
  pool or one command), so payloads are drained into one queue per pipeline id and served from there.
- A command's state is Done only once its pipeline finished AND its queue is empty: answering Done with
  output still queued loses that output (pypsrp stops receiving).
- A terminating error is the pipeline's Failed state carrying an ErrorRecord (pypsrp then sets
  `had_errors`); Write-Error is an ErrorRecord message on the error stream, the pipeline Completed.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field

import psrpcore
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSInvocationState,
)

from vmgen_testbed.windows import scripts
from vmgen_testbed.windows.machine import WindowsMachine

__all__ = ["PsrpShell"]

_FINISHED = (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)


@dataclass
class _Command:
    pipeline: psrpcore.ServerPipeline
    drop_connection: bool = False


@dataclass
class PsrpShell:
    machine: WindowsMachine
    shell_id: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    pool: psrpcore.ServerRunspacePool = field(default_factory=psrpcore.ServerRunspacePool)
    _commands: dict[str, _Command] = field(default_factory=dict)
    _queues: dict[str | None, deque[bytes]] = field(default_factory=dict)
    # The largest PSRP payload one Receive may carry, from the client's MaxEnvelopeSize (set by the
    # WS-Management layer on every request); psrpcore splits messages into fragments that fit.
    payload_limit: int = 100_000

    # ---- input from the client -------------------------------------------------------------------

    def create(self, creation_xml: bytes) -> None:
        self._feed(creation_xml, None)

    def command(self, command_id: str, first_fragment: bytes) -> _Command:
        command_id = command_id.upper()
        command = _Command(psrpcore.ServerPipeline(self.pool, uuid.UUID(command_id)))
        self._commands[command_id] = command
        self._feed(first_fragment, command_id)
        return command

    def send(self, data: bytes, command_id: str | None) -> None:
        self._feed(data, command_id.upper() if command_id else None)

    def signal(self, command_id: str, code: str) -> None:
        command = self._commands.get(command_id.upper())
        if command is None:
            return
        if code.endswith("ctrl_c") and command.pipeline.state == PSInvocationState.Running:
            command.pipeline.stop()
            self._drain()
        elif code.endswith("Terminate"):
            self._commands.pop(command_id.upper(), None)
            self._queues.pop(command_id.upper(), None)

    def _feed(self, data: bytes, command_id: str | None) -> None:
        pipeline_id = uuid.UUID(command_id) if command_id else None
        self.pool.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, pipeline_id))
        while (event := self.pool.next_event()) is not None:
            if isinstance(event, psrpcore.CreatePipelineEvent):
                self._invoke(event)
        self._drain()

    def _invoke(self, event: psrpcore.CreatePipelineEvent) -> None:
        pipeline_id = str(event.pipeline_id).upper()
        command = self._commands[pipeline_id]
        pipeline = command.pipeline
        script = "\n".join(str(cmd.command_text) for cmd in event.pipeline.commands)
        pipeline.start()
        if not self.machine.powered:  # the endpoint stops answering first; this is the race's answer
            outcome = scripts.ScriptOutcome(drop_connection=True)
        else:
            outcome = scripts.run(self.machine, script)
        command.drop_connection = outcome.drop_connection
        for line in outcome.output:
            pipeline.write_output(line)
        for message in outcome.errors:
            pipeline.write_error(
                _exception(message, "Microsoft.PowerShell.Commands.WriteErrorException"),
                ErrorCategoryInfo(Category=ErrorCategory.NotSpecified, Reason="WriteErrorException"),
                fully_qualified_error_id="Microsoft.PowerShell.Commands.WriteErrorException",
            )
        if outcome.terminating is None:
            pipeline.complete()
            return
        failure = outcome.terminating
        record = ErrorRecord(
            Exception=_exception(failure.message, failure.exception_type),
            CategoryInfo=ErrorCategoryInfo(
                Category=getattr(ErrorCategory, failure.category),
                Reason=failure.exception_type.rsplit(".", 1)[-1],
            ),
            FullyQualifiedErrorId=failure.error_id,
        )
        # psrpcore has no public "fail": the Failed state with its ErrorRecord is what Windows sends.
        pipeline._change_state(PSInvocationState.Failed, error=record)

    # ---- output to the client --------------------------------------------------------------------

    def _drain(self) -> None:
        while (payload := self.pool.data_to_send(self.payload_limit)) is not None:
            key = str(payload.pipeline_id).upper() if payload.pipeline_id else None
            self._queues.setdefault(key, deque()).append(payload.data)

    def take(self, command_id: str | None, limit: int) -> bytes:
        """Queued PSRP bytes for the pool (None) or one command: whole payloads, at most `limit` bytes."""
        key = command_id.upper() if command_id else None
        queue = self._queues.get(key)
        taken = bytearray()
        while queue:
            if len(taken) + len(queue[0]) > limit:
                break
            taken += queue.popleft()
        return bytes(taken)

    def command_done(self, command_id: str) -> bool:
        command = self._commands.get(command_id.upper())
        if command is None:
            return True
        return command.pipeline.state in _FINISHED and not self._queues.get(command_id.upper())

    def drops_connection(self, command_id: str) -> bool:
        command = self._commands.get(command_id.upper())
        return command is not None and command.drop_connection

    def knows(self, command_id: str) -> bool:
        return command_id.upper() in self._commands


def _exception(message: str, type_name: str) -> NETException:
    exception = NETException(Message=message)
    names = [type_name, "System.SystemException"]
    names.extend(exception.PSTypeNames)
    exception.PSObject.type_names = names
    return exception
