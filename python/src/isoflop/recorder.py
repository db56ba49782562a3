"""Record a training run from any PyTorch loop as an isoflop run record.

    with isoflop.Recorder(out_dir, run="c1e18-n50m", params=n, config={...}) as rec:
        for step in range(start, steps):
            ...
            rec.log(step=step + 1, tokens=tokens_so_far, loss=loss.item(), lr=lr)

The files are written by isoflop's Rust writer (``isoflop_core::writer``), the one
``isoflop train`` writes through: ``config.json``, ``curve.csv`` (rewritten whole and
renamed into place every few seconds), and ``summary.json`` last, with ``final_loss`` and
divergence by the same rules. Opening takes the run's lease: a second process on the same
run gets :class:`RunHeld` (uncaught, the script exits with status 75, which a sweep counts
as held, not failed). Leaving the ``with`` block normally records the run finished; by an
exception, failed with the exception in one line; by KeyboardInterrupt, SIGTERM or SIGUSR1
(a Slurm job's signal before its time limit), a ``transient`` failure that the next sweep
resumes. Re-opening an unfinished run resumes it: :attr:`Recorder.resume_step` is the last
step logged, and logging a step drops every row at that step or later, so a loop resumed from
an earlier checkpoint duplicates none. Under ``torch.distributed`` (or torchrun's ``RANK``),
only global rank 0 writes; the other ranks' calls do nothing.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
from typing import Any, Callable, Mapping, Optional, Union

from . import _isoflop

__all__ = ["Recorder", "RunHeld", "Interrupted", "global_rank"]


class RunHeld(SystemExit):
    """Another live process holds this run (its lease): nothing was written. Uncaught, the
    script exits with status 75, which ``isoflop sweep`` counts as "held elsewhere"."""

    def __init__(self, message: str) -> None:
        super().__init__(_isoflop.EXIT_HELD)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Interrupted(BaseException):
    """Raised in the main thread by SIGTERM or SIGUSR1 while a :class:`Recorder` is open (as
    Ctrl-C raises KeyboardInterrupt): the run is recorded as a transient failure, so the next
    sweep resumes it. ``signal`` is the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signal = signum


def global_rank() -> int:
    """This process's global rank: ``torch.distributed``'s where it is initialised (torch is
    never imported here), else torchrun's ``RANK``, else Slurm's ``SLURM_PROCID``, else 0."""
    td = sys.modules.get("torch.distributed")
    if td is not None:
        try:
            if td.is_available() and td.is_initialized():
                return int(td.get_rank())
        except Exception:  # a torch build without distributed support
            pass
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").strip().isdigit():
            return int(os.environ[key])
    return 0


def _one_line(text: str) -> str:
    line = next((l.strip() for l in str(text).splitlines() if l.strip()), "")
    return line[:400]


class Recorder:
    """Writes one run's record (see the module's doc). ``out_dir`` is the run's folder (a
    sweep's ``{out}``); ``run`` its name (default: the folder's name); ``params`` the model's
    parameters N as the fit should count them; ``config`` any JSON-serialisable settings,
    kept in ``config.json``; ``flops_per_token`` the FLOPs a token costs (default 6N).
    ``graceful``: SIGTERM and SIGUSR1 only set :attr:`stop_requested` (the loop checks it,
    checkpoints and leaves the block, which is then recorded as a transient stop) instead
    of raising :class:`Interrupted` where the loop happens to be."""

    def __init__(self, out_dir: Union[str, "os.PathLike[str]"], run: Optional[str] = None,
                 params: Optional[int] = None, config: Optional[Mapping[str, Any]] = None,
                 flops_per_token: Optional[float] = None, graceful: bool = False) -> None:
        if params is None or int(params) < 1:
            raise ValueError(f"params must be the model's parameter count (a positive integer), got {params!r}")
        self.out_dir = os.fspath(out_dir)
        self.run = run or os.path.basename(os.path.normpath(self.out_dir))
        self.params = int(params)
        self.config = dict(config or {})
        self.flops_per_token = flops_per_token
        self.active = global_rank() == 0
        self.graceful = graceful
        self.diverged: Optional[str] = None
        self.stop_requested: Optional[int] = None
        self.summary: Optional[dict] = None
        self._rec: Any = None
        self._old_handlers: dict = {}

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "Recorder":
        if not self.active:
            return self
        doc = {
            "run": self.run,
            "params": self.params,
            "trainer": f"isoflop.Recorder {_isoflop.__version__} (Python)",
            "flops_per_token": self.flops_per_token if self.flops_per_token else 6.0 * self.params,
            "config": self.config,
        }
        try:
            self._rec = _isoflop.RunRecorder(self.out_dir, self.run, self.params, json.dumps(doc, default=str))
        except _isoflop.RunHeldError as e:
            raise RunHeld(str(e)) from None
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGUSR1):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_requested = signum
        if not self.graceful:
            raise Interrupted(signum)

    def __exit__(self, et: Any, ev: Any, tb: Any) -> bool:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers = {}
        if not self.active or self._rec is None:
            return False
        if self._rec.ended:
            self._rec.close()
            return False
        if et is None and self.stop_requested is not None:
            name = signal.Signals(self.stop_requested).name
            self.summary = json.loads(self._rec.fail(f"interrupted: stopped by {name}", True))
        elif et is None:
            self.summary = json.loads(self._rec.finish())
        elif issubclass(et, (KeyboardInterrupt, Interrupted)):
            what = "KeyboardInterrupt (Ctrl-C)" if issubclass(et, KeyboardInterrupt) else str(ev)
            self.summary = json.loads(self._rec.fail(f"interrupted: {what}", True))
        else:
            self.summary = json.loads(self._rec.fail(_one_line(f"{et.__name__}: {ev}"), False))
        return False

    # -- logging -----------------------------------------------------------------------
    @property
    def resume_step(self) -> Optional[int]:
        """The last step an earlier session of this run logged (None for a new run; always
        None on ranks other than 0): resume the loop from the checkpoint at or before it."""
        return self._rec.resume_step if self._rec is not None else None

    def log(self, step: int, tokens: int, loss: float, lr: float = math.nan,
            eval_loss: Optional[float] = None, flops: Optional[float] = None) -> Optional[str]:
        """Logs the state after ``step`` optimizer steps: ``tokens`` seen, the training
        ``loss``, the rate ``lr``, a held-out ``eval_loss`` where measured, ``flops`` spent
        (default ``flops_per_token`` x tokens). Returns the divergence reason where this row
        ends the run as diverged (its summary is then written; later calls do nothing)."""
        if self._rec is None or self.diverged is not None:
            return self.diverged
        if flops is None and self.flops_per_token:
            flops = float(self.flops_per_token) * int(tokens)
        reason = self._rec.log(int(step), int(tokens), float(loss), float(lr),
                               None if eval_loss is None else float(eval_loss),
                               None if flops is None else float(flops))
        if reason is not None:
            self.diverged = reason
        return reason

    def flush(self) -> None:
        """Writes the curve now (it is rewritten every few seconds anyway, and at the end)."""
        if self._rec is not None and not self._rec.ended:
            self._rec.flush()

    def stop(self, reason: str) -> None:
        """Ends the record now as a transient stop (the next sweep resumes the run), with
        ``reason`` in its summary; the ``with`` block's end then writes nothing more."""
        if self._rec is not None and not self._rec.ended:
            self.summary = json.loads(self._rec.fail(_one_line(f"interrupted: {reason}"), True))
