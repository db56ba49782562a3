"""Hugging Face ``transformers.Trainer``: record a run as an isoflop run record.

    from isoflop.integrations.hf import IsoflopCallback
    trainer = Trainer(model, args, train_dataset=ds, callbacks=[IsoflopCallback("runs/n50m")])

Tokens come from the Trainer's own count where it keeps one (``num_input_tokens_seen``, with
``include_num_input_tokens_seen=True``), else per-device batch x gradient accumulation x
world size x sequence length per step (``seq_len``, default the model's context). The
parameters are the model's (each tensor once, tied weights counted once); the count without
embeddings goes into ``config.json`` beside it. The learning rate and the eval loss come from
the Trainer's logs. ``transformers`` is an optional dependency (``pip install isoflop[hf]``).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Union

from transformers import TrainerCallback

from ..recorder import Recorder

__all__ = ["IsoflopCallback", "count_params"]


def count_params(model: Any) -> "tuple[int, int]":
    """(total parameters, parameters without the token and position embeddings) of a torch
    module, each tensor counted once (tied input and output embeddings are one tensor)."""
    seen = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
    embed = 0
    emb = getattr(model, "get_input_embeddings", lambda: None)()
    if emb is not None and getattr(emb, "weight", None) is not None:
        embed += emb.weight.numel()
    for name, module in model.named_modules():
        # Learned positions (GPT-2's wpe, OPT's embed_positions): embeddings too.
        if name.endswith(("wpe", "embed_positions", "position_embeddings")) and hasattr(module, "weight"):
            embed += module.weight.numel()
    return total, total - embed


class IsoflopCallback(TrainerCallback):
    """Writes the Trainer's run into ``out_dir`` (see the module's doc). ``run``: its name
    (default the folder's); ``config``: more settings for ``config.json``; ``seq_len``: the
    tokens of one sequence where the Trainer counts none."""

    def __init__(self, out_dir: Union[str, "os.PathLike[str]"], run: Optional[str] = None,
                 config: Optional[Mapping[str, Any]] = None, seq_len: Optional[int] = None) -> None:
        self.out_dir = os.fspath(out_dir)
        self.run = run
        self.config = dict(config or {})
        self.seq_len = seq_len
        self.recorder: Optional[Recorder] = None
        self._last_loss: Optional[float] = None
        self._tokens_per_step = 0

    def _tokens(self, args: Any, state: Any) -> int:
        seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        return seen if seen > 0 else state.global_step * self._tokens_per_step

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Opens the run record (taking its lease; resuming an unfinished one)."""
        total, non_embedding = count_params(model)
        cfg = getattr(model, "config", None)
        seq = self.seq_len or getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", 0)
        self._tokens_per_step = (args.per_device_train_batch_size * args.gradient_accumulation_steps
                                 * max(1, args.world_size) * int(seq or 0))
        doc = dict(self.config)
        doc.update({
            "params": total,
            "params_no_embed": non_embedding,
            "max_steps": state.max_steps,
            "tokens_per_step": self._tokens_per_step,
            "model_config": cfg.to_dict() if hasattr(cfg, "to_dict") else None,
            "trainer": "transformers.Trainer with isoflop.integrations.hf.IsoflopCallback",
        })
        self.recorder = Recorder(self.out_dir, run=self.run, params=total, config=doc)
        self.recorder.__enter__()

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[Mapping[str, float]] = None,
               **kwargs: Any) -> None:
        """Logs the Trainer's training loss (and eval loss) at its step."""
        if self.recorder is None or not logs:
            return
        lr = float(logs.get("learning_rate", float("nan")))
        if "loss" in logs:
            self._last_loss = float(logs["loss"])
            self.recorder.log(step=state.global_step, tokens=self._tokens(args, state), loss=self._last_loss, lr=lr)
        if "eval_loss" in logs and self._last_loss is not None:
            # The same step again, with the held-out loss: the writer replaces the row.
            self.recorder.log(step=state.global_step, tokens=self._tokens(args, state), loss=self._last_loss,
                              lr=lr, eval_loss=float(logs["eval_loss"]))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Ends the record: finished at ``max_steps``, else a transient stop (it resumes)."""
        if self.recorder is None:
            return
        rec, self.recorder = self.recorder, None
        if state.global_step >= state.max_steps:
            rec.__exit__(None, None, None)
        else:
            rec.stop(f"the Trainer stopped at step {state.global_step} of {state.max_steps}")
            rec.__exit__(None, None, None)
