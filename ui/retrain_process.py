"""`spineplan retrain` run from the workstation: in a subprocess (QProcess), never in the GUI process, so a
training that fails, runs out of memory or is killed never takes the window down (house style: training
runs as a subprocess with a status; stop ends it).

The subprocess speaks the CLI's contract (app/cmd_retrain.py):

- with ``--progress json`` its stdout carries one JSON object per line: ``{"event": "progress", "fraction",
  "stage", "message", "eta_s"}`` and finally ``{"event": "result", "path": "OUT/retrain.json"}``; other
  stdout lines are log text and are ignored;
- its exit code: 0 the retrained model passed the check, 4 it was refused (worse than the model in use),
  2 bad input (stderr's "spineplan: ..." line says what to do), 130 / 143 stopped (the last checkpoint is
  kept: the same output folder resumes), 3 an internal error;
- ``OUT/retrain.json``: accepted, model_id, onnx, card, reason, comparison rows, budget, steps, parent.

``RetrainProcess`` runs one such command and reports ``progress`` and one ``finished(RetrainOutcome)``;
``outcome_of`` turns what the process left (exit code, stderr, retrain.json) into what the dialog shows.
"""
from __future__ import annotations

import json
import logging
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

log = logging.getLogger(__name__)

ACCEPTED, REFUSED, BAD_INPUT, STOPPED, FAILED = "accepted", "refused", "bad input", "stopped", "failed"
EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_STOPPED = 4, 2, (130, 143)
KILL_AFTER_MS = 20_000               # a process that ignores the stop request is killed after this
STDERR_KEPT = 40                     # lines of stderr kept to show when the process fails
RESULT_FILE = "retrain.json"


@dataclass(frozen=True)
class RetrainRequest:
    """What the physicist chose in the dialog (the arguments of `spineplan retrain`)."""
    scans: Path
    corrections: Path | None
    budget_minutes: int
    device: str
    out: Path
    modality: str = "auto"           # auto | ct | mr: which model the run adapts


def retrain_arguments(request: RetrainRequest) -> list[str]:
    """`spineplan retrain`'s arguments (after the program) for ``request``, progress as JSON lines."""
    args = ["retrain", "--scans", str(request.scans)]
    if request.corrections is not None:
        args += ["--corrections", str(request.corrections)]
    return args + ["--modality", request.modality, "--budget-minutes", str(int(request.budget_minutes)),
                   "--device", request.device, "-o", str(request.out), "--progress", "json"]


def retrain_command(request: RetrainRequest) -> tuple[str, list[str]]:
    """(program, arguments): this Python running the `app` package; a frozen bundle is `spineplan` itself."""
    if getattr(sys, "frozen", False):
        return sys.executable, retrain_arguments(request)
    return sys.executable, ["-m", "app", *retrain_arguments(request)]


def default_output_folder(now: datetime | None = None) -> Path:
    """A new folder under the user's data folder (``SPINEPLAN_DATA_DIR`` overrides it): retrain/<time>."""
    from spine_core.plan import data_dir

    return data_dir() / "retrain" / (now or datetime.now()).strftime("%Y%m%d-%H%M%S")


@dataclass
class RetrainOutcome:
    """How a run ended: ``status`` (ACCEPTED, REFUSED, BAD_INPUT, STOPPED, FAILED), the plain-words
    ``message``, retrain.json's content (``result``, {} without one) and stderr's last lines."""
    status: str
    message: str
    exit_code: int
    out: Path
    result: dict = field(default_factory=dict)
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def comparison(self) -> list[dict]:
        rows = self.result.get("comparison") or []
        return [r for r in rows if isinstance(r, dict)]


def _read_result(path: Path) -> tuple[dict, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {}, f"its result '{path}' is unreadable ({exc})"
    if not isinstance(doc, dict):
        return {}, f"its result '{path}' holds no result"
    return doc, ""


def _bad_input_message(stderr: list[str]) -> str:
    said = [line.strip() for line in stderr if line.strip().startswith("spineplan:")]
    line = said[-1] if said else next((s.strip() for s in reversed(stderr) if s.strip()), "")
    line = line.removeprefix("spineplan:").strip()
    return line[:1].upper() + line[1:] if line else "The adaptation refused its input (exit 2)."


def outcome_of(exit_code: int, crashed: bool, stop_requested: bool, out: Path, result_path: Path | None,
               stderr: list[str]) -> RetrainOutcome:
    """What a finished run means. ``crashed``: ended by a signal (QProcess.CrashExit); ``stop_requested``:
    the user pressed Cancel; ``result_path``: the result event's path (default: OUT/retrain.json)."""
    stderr = list(stderr)[-STDERR_KEPT:]
    if exit_code in EXIT_STOPPED or (stop_requested and (crashed or exit_code not in (0, EXIT_REFUSED))):
        return RetrainOutcome(STOPPED, f"Stopped. The last checkpoint is kept in {out}: Start with the same output "
                              "folder resumes. The active models are unchanged.", exit_code, out, {}, stderr)
    if exit_code == EXIT_BAD_INPUT and not crashed:
        return RetrainOutcome(BAD_INPUT, _bad_input_message(stderr), exit_code, out, {}, stderr)
    if crashed or exit_code not in (0, EXIT_REFUSED):
        how = "was killed" if crashed else f"failed (exit {exit_code})"
        return RetrainOutcome(FAILED, f"The adaptation {how}; the active models are unchanged. Its last log lines "
                              "are below.", exit_code, out, {}, stderr)
    doc, problem = _read_result(result_path or out / RESULT_FILE)
    if problem:
        return RetrainOutcome(FAILED, f"The adaptation ended but {problem}; the active models are unchanged.",
                              exit_code, out, {}, stderr)
    reason = str(doc.get("reason") or "").strip()
    reason = f": {reason}{'' if reason.endswith(('.', '!', '?')) else '.'}" if reason else "."
    if exit_code == 0 and doc.get("accepted") is True:
        return RetrainOutcome(ACCEPTED, f"The adapted model passed the check{reason} It is not in use yet.",
                              exit_code, out, doc, stderr)
    return RetrainOutcome(REFUSED, f"Refused{reason} The active model is unchanged.", exit_code, out, doc, stderr)


def parse_event(line: str) -> dict | None:
    """A JSON progress or result line of stdout; None for log text."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None


class RetrainProcess(QObject):
    """One `spineplan retrain` subprocess. ``start(request)``; ``stop()`` asks it to end (SIGTERM: it keeps
    its checkpoint) and kills it after ``kill_after_ms``; ``finished`` comes once per run."""

    progress = Signal(float, str, str, object)      # fraction 0..1, stage, message, eta_s (float or None)
    finished = Signal(object)                       # RetrainOutcome

    def __init__(self, command: Callable[[RetrainRequest], tuple[str, list[str]]] = retrain_command,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.command = command
        self.kill_after_ms = KILL_AFTER_MS
        self.process: QProcess | None = None
        self.request: RetrainRequest | None = None
        self.stop_requested = False
        self._stdout = b""
        self._stderr: deque[str] = deque(maxlen=STDERR_KEPT)
        self._result_path: Path | None = None

    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, request: RetrainRequest) -> None:
        if self.running():
            raise RuntimeError("an adaptation is already running")
        self.request, self.stop_requested, self._result_path = request, False, None
        self._stdout, self._stderr = b"", deque(maxlen=STDERR_KEPT)
        if self.process is not None:
            self.process.deleteLater()                   # the previous run's, finished
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")              # progress lines arrive as they are printed
        process.setProcessEnvironment(env)
        process.readyReadStandardOutput.connect(self._on_ready_read_standard_output)
        process.readyReadStandardError.connect(self._on_ready_read_standard_error)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error_occurred)
        self.process = process
        program, arguments = self.command(request)
        log.info("retrain: %s %s", program, " ".join(arguments))
        process.start(program, arguments)

    def stop(self) -> None:
        """SIGTERM (the CLI saves its checkpoint and exits 143); killed if still running after kill_after_ms."""
        if not self.running():
            return
        self.stop_requested = True
        self.process.terminate()
        process = self.process
        QTimer.singleShot(self.kill_after_ms, self, lambda: self._kill_if_running(process))

    def _kill_if_running(self, process: QProcess) -> None:
        if process is self.process and self.running():
            log.warning("retrain did not stop within %d ms; killing it", self.kill_after_ms)
            process.kill()

    def wait_stopped(self, timeout_ms: int = KILL_AFTER_MS) -> None:
        """Stop and wait (the window is closing): killed when it does not end within ``timeout_ms``."""
        if not self.running():
            return
        self.stop()
        if not self.process.waitForFinished(timeout_ms):
            self.process.kill()
            self.process.waitForFinished(2000)

    def _on_ready_read_standard_output(self) -> None:
        self._stdout += bytes(self.process.readAllStandardOutput().data())
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            self._take_line(line.decode("utf-8", "replace"))

    def _on_ready_read_standard_error(self) -> None:
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        self._stderr.extend(line for line in text.splitlines() if line.strip())

    def _take_line(self, line: str) -> None:
        event = parse_event(line)
        if event is None:
            if line.strip():
                log.debug("retrain: %s", line.rstrip())
            return
        if event["event"] == "progress":
            try:
                fraction = min(max(float(event.get("fraction") or 0.0), 0.0), 1.0)
            except (TypeError, ValueError):
                fraction = 0.0
            eta = event.get("eta_s")
            self.progress.emit(fraction, str(event.get("stage") or ""), str(event.get("message") or ""),
                               float(eta) if isinstance(eta, (int, float)) else None)
        elif event["event"] == "result" and event.get("path"):
            self._result_path = Path(str(event["path"]))

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._on_ready_read_standard_output()
        self._on_ready_read_standard_error()
        if self._stdout.strip():
            self._take_line(self._stdout.decode("utf-8", "replace"))
            self._stdout = b""
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        self.finished.emit(outcome_of(exit_code, crashed, self.stop_requested, self.request.out,
                                      self._result_path, list(self._stderr)))

    def _on_error_occurred(self, error: QProcess.ProcessError) -> None:
        if error != QProcess.ProcessError.FailedToStart:
            return                      # crashes and the like end in finished()
        program = self.process.program()
        self.finished.emit(RetrainOutcome(FAILED, f"The adaptation could not start ('{program}': "
                                          f"{self.process.errorString()}). Reinstall SpinePlan with its training "
                                          "extras.", -1, self.request.out))


def _file_of(result: dict, key: str, out: Path) -> Path | None:
    value = result.get(key)
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else out / path


def activate_adapted_model(outcome: RetrainOutcome, site=None) -> str:
    """Register the accepted model of ``outcome`` in the site registry (``SiteModels``, default: the site
    folder) and make it the active one of its id, checked as `spineplan models use` checks it; returns the
    id. A SpineError says what went wrong (nothing is activated then)."""
    from spine_core.errors import SpineError
    from spine_core.models.registry import ModelRegistry, TrustedModels
    from spine_core.models.site import SiteModels

    if outcome.status != ACCEPTED:
        raise SpineError("This model did not pass the check, so it cannot be used; the active model is unchanged.")
    onnx, card = _file_of(outcome.result, "onnx", outcome.out), _file_of(outcome.result, "card", outcome.out)
    if onnx is None or card is None:
        raise SpineError(f"The adaptation's result ({outcome.out / RESULT_FILE}) names no model file and card; "
                         "run the adaptation again.")
    site = site or SiteModels()
    registered, _ = site.register(onnx, card, outcome.result.get("model_id") or None)
    ModelRegistry(site.folder, TrustedModels(site)).verify(registered.id)   # the copy is what was registered
    site.use(registered.id)
    return registered.id
