"""``Trainer.fit``: the one training loop. The CLI, the GUI and torchrun all call it.

It reports through events (``studio.core.events``) to callbacks, and listens to a ``RunControl``
for stop and pause, checked between optimizer steps. What it trains on comes from a workload
(``studio.core.training.workload``): language modelling on a corpus, or a fine-tuning task.
Everything needed to continue exactly (weights, optimizer, step, RNG states, early-stopping
counters) goes into the ``last`` checkpoint, so ``Trainer.resume`` picks up where a stopped or
interrupted run left off.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import time
import traceback
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from filelock import FileLock
from torch import nn

from studio.core.architectures import MemoryEstimate, estimate_training_memory
from studio.core.callbacks import Callback, Dispatcher, LogWriter, MetricsWriter, SamplesWriter, SinkFailed
from studio.core.config import RunConfig
from studio.core.control import Cancelled, RunControl
from studio.core.data.tokenizers import Tokenizer, train_tokenizer
from studio.core.durations import format_duration, parse_duration
from studio.core.errors import CheckpointError, ResourceError, StudioError, TrainingError
from studio.core.events import (
    CheckpointSaved,
    EvalLogged,
    Event,
    LayerStatsLogged,
    LogMessage,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    StepLogged,
)
from studio.core.faults import fault_point
from studio.core.fileio import atomic_write_text, describe_os_error, is_disk_full
from studio.core.i18n import _
from studio.core.models.base import LanguageModel
from studio.core.models.registry import build_model
from studio.core.paths import runs_dir
from studio.core.tasks.model import count_parameters, language_model_of
from studio.core.training import mfu, preflight, tensorboard
from studio.core.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from studio.core.training.checkpoint_commit import committed_checkpoint, recover_checkpoints
from studio.core.training.device import DeviceChoice, choose_device, torch_threads
from studio.core.training.distributed import DistributedEnv
from studio.core.training.finetune import inherit_base
from studio.core.training.lm_workload import LanguageModelWorkload
from studio.core.training.muon import MuonAdamW, muon_parameter_groups
from studio.core.training.run_dir import (
    RunDir,
    RunInfoWriter,
    hold_run_lock,
    release_run_lock,
    resolve_checkpoint,
)
from studio.core.training.schedules import lr_at, lr_within_budget
from studio.core.training.task_workload import TaskWorkload, resolve_examples
from studio.core.training.workload import Emit, Workload


@dataclass
class RunResult:
    status: str  # finished | stopped | early_stopped | failed
    step: int
    best_loss: float
    run_dir: Path
    error: str = ""


class _LossModule(nn.Module):
    """Routes the workload's loss through ``forward`` so DDP and torch.compile see the call."""

    def __init__(self, model: nn.Module, workload: Workload):
        super().__init__()
        self.model = model
        self.workload = workload

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.workload.loss(self.model, batch)


class _CompiledOrEager:
    """``torch.compile`` of a module that falls back to the module itself, with a warning, if
    compiling fails (no C compiler, an unsupported operation): a speed option must never be the
    reason a run fails. Compilation happens on the first call, so that is where it is caught."""

    def __init__(self, module: nn.Module, emit: Emit):
        self.eager = module
        self.compiled: nn.Module | None = torch.compile(module)  # type: ignore[assignment]
        self.emit = emit

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.compiled is not None:
            try:
                return self.compiled(batch)
            except torch.OutOfMemoryError:
                raise
            except Exception as e:  # noqa: BLE001 - any compiler failure: train uncompiled instead
                self.compiled = None
                reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                # Translators: run.compile is a setting's name, kept as is.
                self.emit(LogMessage("warning", _("torch.compile failed ({reason}); training without it. "
                                                  "Set run.compile = false to skip the attempt").format(reason=reason)))
        return self.eager(batch)

    def __getattr__(self, name: str) -> object:  # no_sync() and the like, from the module (DDP)
        return getattr(self.eager, name)


@dataclass
class _Progress:
    """Counters that go into every checkpoint."""

    step: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    best_loss: float = math.inf
    best_step: int = 0
    evals_without_improvement: int = 0
    saved_step: int | None = None  # step of the last committed ``last`` checkpoint, if any
    trained: bool = False  # has this fit taken an optimizer step? Only then is there work to save
    recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=20))


# Settings a resume may change (more steps, a new learning rate, another device); anything else
# would make the checkpoint mean something else, or not load at all.
_RESUME_CHANGEABLE = {"run", "train", "schedule", "data"}
_RESUME_OPTIMIZER_CHANGEABLE = {"beta1", "beta2", "eps", "weight_decay", "momentum"}
_RESUME_TASK_CHANGEABLE = {"eval_examples"}


class _EarlyEvents:
    """Holds the events emitted before the run folder exists (data preparation), so the folder's
    metrics and log still begin at the beginning once it is created."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.open = True

    def on_event(self, event: Event) -> None:
        if self.open:
            self.events.append(event)


GPU_LOG_INTERVAL = 10  # steps between loss read-backs on a GPU (train.log_interval = 0)


class _PendingLoss:
    """The training loss between log points, summed where it was computed: reading it back is
    one host synchronisation per log point instead of one per micro-batch."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0
        self.lr = 0.0  # the newest step's, logged with the mean
        self.grad_norm: torch.Tensor | None = None

    def add(self, loss: torch.Tensor) -> None:
        value = loss.detach().float()
        self.total = value if self.total is None else self.total + value
        self.count += 1

    def take(self) -> float | None:
        """The mean since the last take (None if nothing was added)."""
        if self.total is None:
            return None
        mean = float(self.total) / self.count
        self.total, self.count = None, 0
        return mean


class Trainer:
    """One run. ``Trainer(config, out=...)`` starts a new one; ``Trainer.resume(ref)`` continues one.

    A new run's folder is created only once its data is ready and the pre-flight checks pass, so a
    run that cannot start leaves no half-made run in the library. A resumed run is locked, its
    checkpoints repaired if a save was interrupted, and its checkpoint, optimizer state and data
    all loaded before anything is written to it; a resume that fails leaves the run exactly as it
    was, its ``last`` checkpoint byte for byte.
    """

    def __init__(self, config: RunConfig, run: RunDir | None = None, *, out: Path | None = None, resume: bool = False,
                 overrides: Sequence[str] = ()):
        self.config = config
        self.dist = DistributedEnv.from_environ()
        if resume and run is None:
            raise ValueError("resume needs an existing run")
        self.run = run
        self.out = Path(out).expanduser() if out else None
        self.resume_requested = resume
        self.overrides = list(overrides)  # a resume's --set, saved to config.toml once the resume has loaded
        self._lock: FileLock | None = None
        self._early = _EarlyEvents()
        self._previous_info: dict[str, object] = {}

    @classmethod
    def resume(cls, ref: str | Path, overrides: Iterable[str] = ()) -> Trainer:
        """Continue a run from its ``last`` checkpoint. Overrides (e.g. more steps) apply to this
        resume, and are written to the run's config only after it has loaded successfully."""
        run = RunDir.open(ref)
        config = run.load_config()
        overrides = list(overrides)
        if overrides:
            config = config.with_overrides(overrides)
        return cls(config, run, resume=True, overrides=overrides)

    # ------------------------------------------------------------------------------------------

    def fit(self, callbacks: Sequence[Callback] = (), control: RunControl | None = None) -> RunResult:
        control = control or RunControl()
        emit = Dispatcher([self._early, *callbacks])
        self._emit = emit
        self.progress = _Progress()
        self.model: nn.Module | None = None
        self.tokenizer: Tokenizer | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        choice: DeviceChoice | None = None
        ended_normally = False
        try:
            choice = choose_device(self.config.run, self.dist.local_rank if self.dist.enabled else None)
            with torch_threads(choice.threads):
                self.dist.init(choice.device)
                status, reason = self._fit(choice, control)
            best_bpc, best_bpb = self._bits(self.progress.best_loss)
            emit(RunFinished(status, self.progress.step, self.progress.best_loss, self.progress.elapsed_s, reason,
                             best_bpc, best_bpb))
            ended_normally = True
            return RunResult(status, self.progress.step, self.progress.best_loss, self._run_path())
        except Cancelled:
            emit.strict = False
            emit(RunFinished("stopped", self.progress.step, self.progress.best_loss, self.progress.elapsed_s,
                             _("stopped before training began")))
            self._restore_status_if_untouched()
            return RunResult("stopped", self.progress.step, self.progress.best_loss, self._run_path())
        except Exception as e:  # noqa: BLE001 - every failure becomes a truthful "failed" event
            message = self._explain(e, choice)
            saved = self._save_after_failure(e)
            emit.strict = False  # reporting the failure must not fail (the disk may be full)
            emit(RunFailed(self.progress.step, message, traceback.format_exc(), saved))
            self._restore_status_if_untouched(message)
            return RunResult("failed", self.progress.step, self.progress.best_loss, self._run_path(), message)
        finally:
            release_run_lock(self._lock)
            self._lock = None
            self.dist.close(together=ended_normally)

    def _run_path(self) -> Path:
        return self.run.path if self.run is not None else Path()

    def _attach(self, run: RunDir) -> None:
        """Take the run's lock, repair interrupted saves, and start writing the run folder."""
        self._lock = hold_run_lock(run.path)
        self.run = run
        info = run.read_info()
        if self.resume_requested:  # what a resume that never trains puts back
            self._previous_info = {k: info.get(k) for k in ("status", "step", "finished", "error", "reason")}
        sinks: list[Callback] = [MetricsWriter(run.metrics_path), LogWriter(run.log_path),
                                 SamplesWriter(run.path / "samples.jsonl"), RunInfoWriter(run)]
        if tensorboard.available():
            sinks.append(tensorboard.TensorBoardWriter(run.path / "tensorboard"))
        self._early.open = False
        for event in self._early.events:  # what happened before the folder existed, in order
            for sink in sinks:
                sink.on_event(event)
        self._emit.callbacks[0:1] = sinks  # the folder's writers first, so run.json leads the views
        run.write_info(status="preparing", pid=os.getpid(), host=socket.gethostname())
        for note in recover_checkpoints(run.checkpoints):
            self._emit(LogMessage("warning", note))

    def _restore_status_if_untouched(self, error: str = "") -> None:
        """A resume that never trained leaves the run as it was (stopped, interrupted, ...)."""
        if self.run is None or not self.resume_requested or self.progress.trained or self._lock is None:
            return
        fields = {**self._previous_info}
        fields["status"] = fields.get("status") or "interrupted"
        if error:
            fields["last_resume_error"] = error
        with contextlib.suppress(OSError):
            self.run.write_info(**fields)

    # ------------------------------------------------------------------------------------------

    def _fit(self, choice: DeviceChoice, control: RunControl) -> tuple[str, str]:
        emit = self._emit
        device = choice.device
        resume_ckpt: Checkpoint | None = None
        base_model: LanguageModel | None = None
        tokenizer: Tokenizer | None = None
        if self.resume_requested:
            assert self.run is not None
            if self.dist.is_main:
                self._attach(self.run)
            resume_ckpt = _load_resumable(self.run)
            _check_resume_compatible(resume_ckpt.config, self.config)
            if self.dist.is_main:
                self.run.drop_snapshots_after(resume_ckpt.step)
            tokenizer = resume_ckpt.tokenizer
        else:
            self.config = self.config.with_absolute_paths()
            if self.dist.is_main:
                preflight.raise_for([preflight.folder_verdict(self.out or runs_dir())])
            if self.config.finetune.base:
                base_model, tokenizer = self._load_base()
        cfg = self.config
        # Rank 0 builds the token cache while the other ranks wait, then they read it.
        if self.dist.enabled and not self.dist.is_main:
            self.dist.barrier()
        torch.manual_seed(cfg.train.seed)
        workload = make_workload(cfg, emit, control, tokenizer, base_model, self.dist.rank)
        if self.dist.enabled and self.dist.is_main:
            self.dist.barrier()
        self.workload = workload
        self.tokenizer = workload.tokenizer
        vocab_size = workload.tokenizer.vocab_size
        estimate = estimate_training_memory(cfg.model, vocab_size, cfg.train.batch_size, cfg.model.context_length, cfg.optimizer.name)
        if self.dist.is_main:
            self._preflight(estimate, device)
        if self.run is None and self.dist.is_main:
            self._attach(RunDir.create(cfg, self.out))
        model = workload.build_model().to(device)
        if resume_ckpt is not None:
            resume_ckpt.load_weights(model)
        self.model = model
        optimizer = _make_optimizer(model, cfg)
        self.optimizer = optimizer

        p = self.progress
        if resume_ckpt is not None:
            rng = self.dist.own_states(resume_ckpt.load_training_state(optimizer))
            s = resume_ckpt.state
            p.step, p.tokens_seen, p.elapsed_s = int(s["step"]), int(s["tokens_seen"]), float(s["elapsed_s"])
            p.best_loss = float(s["best_loss"]) if s.get("best_loss") is not None else math.inf
            p.best_step = int(s.get("best_step", 0))
            p.evals_without_improvement = int(s.get("evals_without_improvement", 0))
            p.saved_step = p.step
            try:
                torch.set_rng_state(rng.pop("torch"))
                cuda_state = rng.pop("cuda", None)
                if cuda_state is not None and device.type == "cuda":
                    torch.cuda.set_rng_state(cuda_state, device)
                workload.load_rng_states(rng)
            except (KeyError, RuntimeError, TypeError) as e:
                message = _("{folder}: its random-number states are damaged ({reason})")
                raise CheckpointError(message.format(folder=resume_ckpt.directory, reason=e)) from None
            if self.overrides and self.run is not None and self.dist.is_main:
                cfg.save(self.run.config_path)  # only now: a refused or failed resume changes nothing

        total_steps = workload.total_steps(cfg, self.dist.world_size)
        # Training time (p.elapsed_s: steps and evaluations, not pauses) is kept in the checkpoint, so
        # a resumed run continues its budget rather than starting a new one.
        budget = parse_duration(cfg.train.time_budget)
        all_params, trainable = count_parameters(model)
        if trainable < all_params:
            # Translators: {method} is the fine-tuning method as the setting writes it (freeze, lora), kept as is.
            message = _("{trainable:,} of {total:,} parameters learn ({method})")
            emit(LogMessage("info", message.format(trainable=trainable, total=all_params, method=cfg.finetune.method)))
        self._params = all_params
        emit(
            RunStarted(
                run_dir=str(self.run.path) if self.run else "",
                name=cfg.run.name or (self.run.name if self.run else ""),
                arch=cfg.model.arch,
                parameters=all_params,
                total_steps=total_steps,
                start_step=p.step,
                # Translators: put after the device: "cuda:0 x4 ranks" (processes training together).
                device=choice.describe() + (_(" x{count} ranks").format(count=self.dist.world_size) if self.dist.enabled else ""),
                threads=torch.get_num_threads(),
                resumed=resume_ckpt is not None,
                memory_estimate=estimate.describe(),
                time_budget_s=budget,
            )
        )
        if resume_ckpt is not None and p.step >= total_steps:
            # Translators: train.steps is a setting's name, kept as is.
            return "finished", _("already at step {step} of {total}; raise train.steps to train further").format(
                step=p.step, total=total_steps
            )
        if resume_ckpt is not None and budget is not None and p.elapsed_s >= budget:
            # Translators: {budget} is a duration (3m, 1h30m); train.time_budget is a setting's name, kept as is.
            return "finished", _("the time budget ({budget}) is used up; raise train.time_budget to train further").format(
                budget=format_duration(budget)
            )

        loss_module: nn.Module = _LossModule(model, workload)
        if self.dist.enabled:
            loss_module = nn.parallel.DistributedDataParallel(loss_module, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.run.compile:
            emit(LogMessage("info", _("compiling the model (torch.compile); the first steps are slow")))
            loss_module = _CompiledOrEager(loss_module, emit)  # type: ignore[assignment]
        # Per device: tokens/s counts every rank's tokens, the peak is one device's.
        flops_per_token = mfu.training_flops_per_token(model, cfg.model) / self.dist.world_size
        peak = mfu.peak_flops(device, torch.get_num_threads())
        params = [q for q in model.parameters() if q.requires_grad]
        clip = cfg.train.grad_clip if cfg.train.grad_clip > 0 else math.inf
        accum = cfg.train.grad_accum_steps
        checkpoint_every = cfg.train.checkpoint_interval or cfg.train.eval_interval
        status, reason = "finished", ""
        model.train()
        # Reading the loss back makes the host wait for the device; on a GPU, once a step kept it
        # from queueing the next step's work. On the CPU it costs nothing, so every step is logged.
        log_every = cfg.train.log_interval or (1 if device.type == "cpu" else GPU_LOG_INTERVAL)
        losses = _PendingLoss()

        def log_steps() -> None:
            """One StepLogged for the steps since the last: their mean loss, read back now."""
            mean = losses.take()
            if mean is None or losses.grad_norm is None:
                return
            # Averaged over the ranks first: a non-finite loss on one rank is non-finite on all, so
            # every rank stops here together instead of one leaving the others in the collective.
            step_loss = self.dist.mean(mean, device)
            grad_norm = float(losses.grad_norm)  # the same on every rank (DDP averages the gradients)
            if math.isfinite(step_loss) and not math.isfinite(grad_norm):
                # A finite loss with an infinite gradient: this step's update made the weights non-finite.
                raise TrainingError(_diverged_weights(p.step, cfg.train.lr))
            if not math.isfinite(step_loss):
                # Translators: train.lr, train.grad_clip and schedule.warmup_steps are setting names, kept as is.
                raise TrainingError(
                    _("the loss became {loss} at step {step}: training diverged. Lower train.lr "
                      "(now {lr:g}), keep train.grad_clip above 0, or lengthen schedule.warmup_steps").format(
                        loss=step_loss, step=p.step, lr=cfg.train.lr
                    )
                )
            tokens_per_s = sum(n for _, n in p.recent) / max(1e-9, sum(t for t, _ in p.recent))
            emit(StepLogged(p.step, total_steps, step_loss, losses.lr, grad_norm, tokens_per_s, p.tokens_seen,
                            p.elapsed_s, mfu.mfu(flops_per_token, tokens_per_s, peak)))

        while p.step < total_steps:
            if control.pause_requested:
                paused_at = p.step
                control.wait_while_paused(
                    lambda: emit(RunPaused(paused_at)), lambda: emit(RunResumed(paused_at))  # noqa: B023 - called right here
                )
            if self.dist.any_true(control.stop_requested, device):
                status, reason = "stopped", _("stopped by request")
                break

            t0 = time.perf_counter()
            if budget is None:
                lr = lr_at(p.step, cfg.train.lr, total_steps, cfg.schedule)
            else:
                lr = lr_within_budget(p.step, p.elapsed_s / budget, cfg.train.lr, total_steps, cfg.schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            step_tokens = 0
            for micro in range(accum):
                batch = {k: v.to(device, non_blocking=True) for k, v in workload.next_batch().items()}
                step_tokens += workload.batch_tokens(batch)
                sync = contextlib.nullcontext()
                if self.dist.enabled and micro < accum - 1:
                    sync = loss_module.no_sync()  # type: ignore[operator]
                with sync, choice.autocast():
                    loss = loss_module(batch)
                    (loss / accum).backward()
                losses.add(loss)
            stats_every = cfg.train.layer_stats_interval
            before = None
            if stats_every and (p.step + 1) % stats_every == 0 and self.dist.is_main:
                before = self._layer_stats_before()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)  # a tensor: read back only when logged
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            p.step += 1
            p.trained = True
            if before is not None:
                stats = self._layer_stats_after(before)
                if stats is not None:
                    emit(stats)
            step_tokens *= self.dist.world_size
            p.tokens_seen += step_tokens
            dt = time.perf_counter() - t0
            p.elapsed_s += dt
            p.recent.append((dt, step_tokens))
            # Under torchrun every rank must stop at the same step: the first rank out of time stops them all.
            out_of_time = budget is not None and self.dist.any_true(p.elapsed_s >= budget, device)
            at_end = p.step == total_steps or out_of_time
            # Logged before every evaluation and save too, so a checkpoint never follows an unchecked
            # loss, and a resume starts with nothing pending.
            losses.lr, losses.grad_norm = lr, grad_norm
            if p.step % log_every == 0 or at_end or p.step % cfg.train.eval_interval == 0 or p.step % checkpoint_every == 0:
                log_steps()
            fault_point("train:step")

            if p.step % cfg.train.eval_interval == 0 or at_end:
                t_eval = time.perf_counter()
                improved, stop_early = self._evaluate(device, choice)
                p.elapsed_s += time.perf_counter() - t_eval
                self._check_weights_finite()  # on every rank, before the best save and rank 0's snapshot
                if improved:
                    self._save("best")
                if cfg.train.snapshots and self.dist.is_main:
                    self._save_snapshot()
                if stop_early:
                    status = "early_stopped"
                    reason = _("no improvement for {count} evaluations; best at step {step}").format(
                        count=cfg.train.early_stopping_patience, step=p.best_step
                    )
                    break
            if p.step % checkpoint_every == 0 and not at_end:
                self._save("last")
            if out_of_time:
                # Translators: why training ended; {budget} is a duration (3m, 1h30m).
                reason = _("the time budget of {budget} is used").format(budget=format_duration(budget or 0.0))
                break

        log_steps()  # the steps since the last log point, when a stop ended the loop between two
        if p.saved_step != p.step:
            self._save("last")
        if status != "stopped" and cfg.task.kind != "lm" and self.dist.is_main:
            self._final_results(device)
        return status, reason

    def _load_base(self) -> tuple[LanguageModel, Tokenizer]:
        """The base run's language model (adapters merged, head dropped) and tokenizer. The run's
        config takes what it inherits from the base (``studio.core.training.finetune``), so the
        run folder describes what was trained."""
        self.config = inherit_base(self.config)
        path, _run = resolve_checkpoint(self.config.finetune.base, self.config.finetune.base_checkpoint)
        base = load_checkpoint(path)
        model = language_model_of(base.build_model("cpu"))
        # Translators: {model} is an architecture's name (GPT-style decoder).
        message = _("fine-tuning from {path} (step {step}, {model})")
        self._emit(LogMessage("info", message.format(path=path, step=base.step, model=_(base.config.model.label))))
        return model, base.tokenizer

    def _evaluate(self, device: torch.device, choice: DeviceChoice) -> tuple[bool, bool]:
        cfg, p, model = self.config, self.progress, self.model
        assert model is not None
        result = self.workload.evaluate(model, device, choice.autocast(), self.dist.is_main, p.step)
        if result is None:
            return False, False
        improved = result.loss < p.best_loss - cfg.train.early_stopping_min_delta
        if improved:
            p.best_loss, p.best_step, p.evals_without_improvement = result.loss, p.step, 0
        else:
            p.evals_without_improvement += 1
        bpc, bpb = self._bits(result.loss)
        self._emit(EvalLogged(
            p.step, result.loss, math.exp(min(result.loss, 50.0)), p.best_loss, improved, p.tokens_seen, p.elapsed_s,
            result.sample, tuple(sorted(result.metrics.items())), bpc, bpb,
        ))
        patience = cfg.train.early_stopping_patience
        return improved, bool(patience and p.evals_without_improvement >= patience)

    def _bits(self, loss: float) -> tuple[float | None, float | None]:
        workload: Workload | None = getattr(self, "workload", None)  # set once the data is ready
        if workload is None or not math.isfinite(loss):
            return None, None
        return workload.bits(loss)

    def _final_results(self, device: torch.device) -> None:
        """Score the best checkpoint on the whole validation and test splits; keep results.json."""
        assert self.model is not None
        if self.run is not None and (self.run.checkpoint("best") / "model.safetensors").exists():
            load_checkpoint(self.run.checkpoint("best")).load_weights(self.model)
        self.model.eval()
        results = self.workload.final_results(self.model, device, self._emit)
        if self.run is not None and results:
            atomic_write_text(self.run.path / "results.json", json.dumps(results, indent=1))

    def _state(self) -> dict[str, object]:
        p = self.progress
        return {
            "step": p.step,
            "tokens_seen": p.tokens_seen,
            "elapsed_s": p.elapsed_s,
            "best_loss": p.best_loss if math.isfinite(p.best_loss) else None,
            "best_step": p.best_step,
            "evals_without_improvement": p.evals_without_improvement,
        }

    def _check_weights_finite(self) -> None:
        """The loss is checked at the log point before every save, but it is the loss from before
        this step's update; a huge finite step can still overflow the weights. Never save those.
        Every rank holds the same weights, so under torchrun all of them stop here together."""
        assert self.model is not None
        if not _weights_finite(self.model):
            raise TrainingError(_diverged_weights(self.progress.step, self.config.train.lr))

    def _save(self, label: str) -> None:
        """Save a checkpoint. Under torchrun every rank calls this at the same step: each rank
        draws its own batches, so ``last`` keeps every rank's random states (gathered to rank 0,
        which alone writes), and each rank takes back its own on resume."""
        assert self.model is not None and self.tokenizer is not None
        self._check_weights_finite()
        rng = None
        optimizer = None
        if label == "last":
            optimizer = self.optimizer
            rng = {"torch": torch.get_rng_state(), **self.workload.rng_states()}
            device = next(self.model.parameters()).device
            if device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state(device)
            if self.dist.enabled:
                rng = self.dist.gather_states(rng, device)
        if not self.dist.is_main or self.run is None:
            if label == "last":
                self.progress.saved_step = self.progress.step
            return
        # A disk that cannot take this checkpoint stops the run now, while the last one is whole.
        preflight.check_save_room(self.run.checkpoints, self._params, resumable=label == "last")
        path = save_checkpoint(
            self.run.checkpoint(label), model=self.model, config=self.config, tokenizer=self.tokenizer,
            state={**self._state(), **self.workload.checkpoint_extra()}, optimizer=optimizer, rng=rng,
        )
        if label == "last":
            self.progress.saved_step = self.progress.step
        self._emit(CheckpointSaved(self.progress.step, str(path), label))

    # ---- what the Inspect page reads ------------------------------------------------------------

    def _layer_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        """The trained model's layer groups, input first, with the names LayerStatsLogged uses; a
        task model's come from its base, its head counted with the output."""
        model = self.model
        base = model if isinstance(model, LanguageModel) else getattr(model, "base", None)
        if not isinstance(base, LanguageModel):
            return []
        groups = base.layer_groups()
        names = ["embeddings", *(str(i) for i in range(1, len(groups) - 1)), "output"]
        assert model is not None
        seen = {id(q) for g in groups for q in g}
        groups[-1] = groups[-1] + [q for q in model.parameters() if id(q) not in seen]  # a task head
        return [(n, [q for q in g if q.requires_grad]) for n, g in zip(names, groups, strict=True)]

    def _layer_stats_before(self) -> tuple[list[tuple[str, list[nn.Parameter]]], list[float], list[list[torch.Tensor]]] | None:
        """Each group's gradient norm (before clipping) and a copy of its weights, just before
        the optimizer step; a copy of a small model is a memcpy, taken every few steps only.
        None (the statistics skipped, never the run failed) if the copy cannot be made."""
        try:
            return self._measure_before()
        except (RuntimeError, ValueError, TypeError) as e:  # out of memory for the copy, an odd dtype mix
            self._emit(LogMessage("warning", _("no layer statistics at step {step}: {error}").format(step=self.progress.step + 1, error=e)))
            return None

    def _measure_before(self) -> tuple[list[tuple[str, list[nn.Parameter]]], list[float], list[list[torch.Tensor]]]:
        groups = [(n, g) for n, g in self._layer_groups() if g]
        norms = [float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(q.grad) for q in g if q.grad is not None]))
                       if any(q.grad is not None for q in g) else 0.0) for _n, g in groups]
        weights = [[q.detach().clone() for q in g] for _n, g in groups]
        return groups, norms, weights

    def _layer_stats_after(self, before: tuple[list[tuple[str, list[nn.Parameter]]], list[float], list[list[torch.Tensor]]]) -> Event | None:
        groups, norms, weights = before
        ratios = []
        with torch.no_grad(), contextlib.suppress(RuntimeError, ValueError, TypeError):
            for (_n, g), old in zip(groups, weights, strict=True):
                change = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(q - w) for q, w in zip(g, old, strict=True)]))
                size = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(w) for w in old]))
                ratios.append(float(change / size) if float(size) > 0 else 0.0)
        if len(ratios) != len(groups):
            return None
        return LayerStatsLogged(self.progress.step, tuple(n for n, _g in groups), tuple(norms), tuple(ratios))

    def _save_snapshot(self) -> None:
        """A weights-only checkpoint for the Inspect page's time scrubber, at an evaluation. At
        most ``train.snapshots`` are kept, spread over the run: past the limit, the inner
        snapshot that sits closest to its neighbours goes (the first and the latest stay)."""
        assert self.run is not None and self.model is not None and self.tokenizer is not None
        keep = self.config.train.snapshots
        folder = self.run.snapshots / f"step-{self.progress.step:08d}"
        try:  # a snapshot is a view's extra: without room for one, training goes on without it
            preflight.check_save_room(self.run.snapshots, self._params, resumable=False)
            save_checkpoint(folder, model=self.model, config=self.config, tokenizer=self.tokenizer, state=self._state())
        except (ResourceError, OSError) as e:
            self._emit(LogMessage("warning", _("no Inspect snapshot at step {step}: {error}").format(
                step=self.progress.step, error=describe_os_error(e) if isinstance(e, OSError) else str(e))))
            return
        self._emit(CheckpointSaved(self.progress.step, str(folder), "snapshot"))
        saved = self.run.snapshot_steps()
        for _step, drop in saved_to_drop(saved, keep):
            shutil.rmtree(drop, ignore_errors=True)

    def _save_after_failure(self, error: BaseException) -> str:
        """Keep the work done so far: save ``last`` if this fit trained since its last save,
        unless the failure itself may have corrupted the weights or makes saving impossible.
        Returns where the last good state is ('' if there is none)."""
        p = self.progress
        previous = ""
        if self.run is not None and p.saved_step is not None:
            previous = str(self.run.checkpoint("last"))
        model = self.model
        if (
            model is None
            or self.optimizer is None
            or not p.trained  # nothing new: above all, never overwrite a good checkpoint with step 0
            or self.dist.enabled  # the other ranks may be gone: a gather now could hang
            or p.step == p.saved_step
            or isinstance(error, TrainingError | ResourceError | SinkFailed | CheckpointError)
            or is_disk_full(error)
            or not _weights_finite(model)
        ):
            return previous
        try:
            self._save("last")
        except Exception:  # noqa: BLE001 - the original error is what the user must see
            return previous
        return str(self.run.checkpoint("last")) if self.run else ""

    def _preflight(self, estimate: MemoryEstimate, device: torch.device) -> None:
        """Refuse, before allocating anything, a run that cannot fit; warn about a tight one."""
        verdicts = [preflight.memory_verdict(estimate, device.type, device.index)]
        folder = self.run.path if self.run is not None else (self.out or runs_dir())
        verdicts.append(preflight.disk_verdict(estimate.params, folder))
        for v in verdicts:
            if v.level == "warning":
                self._emit(LogMessage("warning", v.message))
        preflight.raise_for(verdicts)

    def _explain(self, error: BaseException, choice: DeviceChoice | None) -> str:
        cfg = self.config
        if isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower() or "DefaultCPUAllocator" in str(error):
            estimate = ""
            if self.tokenizer is not None:
                estimate = estimate_training_memory(
                    cfg.model, self.tokenizer.vocab_size, cfg.train.batch_size, cfg.model.context_length, cfg.optimizer.name
                ).describe()
            where = choice.device if choice else _("the device")
            # Translators: {device} is where it ran (cuda:0); {estimate} the memory estimate; the train.* and
            # model.* words are setting names, kept as is.
            return _(
                "out of memory on {device} with batch {batch} x context {context}. "
                "Estimate: {estimate}. Lower train.batch_size (raise train.grad_accum_steps to keep the effective batch), "
                "shorten model.context_length, or pick a smaller model"
            ).format(device=where, batch=cfg.train.batch_size, context=cfg.model.context_length, estimate=estimate)
        if isinstance(error, StudioError):
            return str(error)
        if is_disk_full(error):
            # Raised by a write (a checkpoint, a sample) after the pre-flight check passed: the
            # disk filled meanwhile. Nothing half-written is kept, and the last checkpoint is whole.
            return _("the disk is full: a write failed, so training stopped and the last saved checkpoint was kept. "
                     "Free some space and resume")
        if isinstance(error, OSError):
            return describe_os_error(error)
        return f"{type(error).__name__}: {error}"


# ---- helpers ---------------------------------------------------------------------------------


def saved_to_drop(saved: list[tuple[int, Path]], keep: int) -> list[tuple[int, Path]]:
    """Which snapshots go so that at most ``keep`` stay, spread over the run: the first and the
    latest always stay, and between them the one nearest each point of an even grid. (Dropping
    the one closest to its neighbours, one at a time, let early snapshots crowd: 3 kept of 50
    evaluations were the 1st, 3rd and 50th.)"""
    if len(saved) <= max(keep, 1):
        return []
    if keep <= 1:
        return saved[:-1]
    first, last = saved[0][0], saved[-1][0]
    kept = {0, len(saved) - 1}
    for i in range(1, keep - 1):
        target = first + (last - first) * i / (keep - 1)
        free = [j for j in range(len(saved)) if j not in kept]
        if free:
            kept.add(min(free, key=lambda j: (abs(saved[j][0] - target), j)))
    return [item for j, item in enumerate(saved) if j not in kept]


def make_workload(config: RunConfig, emit: Emit, control: RunControl, tokenizer: Tokenizer | None,
                  base: LanguageModel | None, rank: int = 0) -> Workload:
    """Language modelling on [data], or the task in [task] on a base (a new model if none)."""
    if config.task.kind == "lm":
        return LanguageModelWorkload(config, emit, control, tokenizer, base, rank)
    if tokenizer is None:
        # Training a task from scratch: the vocabulary comes from the task's own training text.
        # Translators: {kind} is the tokenizer's kind as the setting writes it (char, word, bpe).
        message = _("no base model: training a {kind} tokenizer on the task's examples").format(kind=config.tokenizer.kind)
        emit(LogMessage("info", message))
        train, _valid, _test = resolve_examples(config)
        texts = [t for e in train for t in (e.question, e.source, e.target) if t]
        tokenizer = train_tokenizer(config.tokenizer, texts)
    if base is None:
        base = build_model(config.model, tokenizer.vocab_size)
    return TaskWorkload(config, emit, base, tokenizer, None, rank)


def _weights_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(q).all()) for q in model.parameters())


def _diverged_weights(step: int, lr: float) -> str:
    # Translators: train.lr, train.grad_clip and schedule.warmup_steps are setting names, kept as is.
    return _("the weights became infinite or NaN at step {step}: training diverged. Lower train.lr "
             "(now {lr:g}), keep train.grad_clip above 0, or lengthen schedule.warmup_steps").format(step=step, lr=lr)


def _make_optimizer(model: nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """Weight decay on matrices and embeddings only; biases and norm gains are left alone."""
    decay: list[nn.Parameter] = []
    keep: list[nn.Parameter] = []
    seen: set[int] = set()
    for q in model.parameters():
        if id(q) in seen or not q.requires_grad:
            continue
        seen.add(id(q))
        (decay if q.dim() >= 2 else keep).append(q)
    o = cfg.optimizer
    lr = cfg.train.lr
    if o.name == "muon":
        return MuonAdamW(muon_parameter_groups(model, decay, keep, o.weight_decay), lr=lr, momentum=o.momentum,
                         betas=(o.beta1, o.beta2), eps=o.eps)
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": keep, "weight_decay": 0.0}]
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps)
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps)
    return torch.optim.SGD(groups, lr=lr, momentum=o.momentum)


def _load_resumable(run: RunDir) -> Checkpoint:
    path = run.checkpoint("last")
    if committed_checkpoint(path) is None and not path.exists():
        message = _("{path} has no checkpoint to resume from yet (it stopped before its first save)")
        raise CheckpointError(message.format(path=run.path))
    ckpt = load_checkpoint(path)
    if not ckpt.resumable:
        raise CheckpointError(_("{path} holds weights only and cannot be resumed").format(path=path))
    return ckpt


def _check_resume_compatible(saved: RunConfig, now: RunConfig) -> None:
    """A resume continues the same training: the model, tokenizer, optimizer kind, task and
    fine-tuning method must be those of the checkpoint. Says which settings changed."""
    before, after = saved.to_dict(), now.to_dict()
    changed = []
    for section, values in after.items():
        if section in _RESUME_CHANGEABLE or not isinstance(values, dict):
            continue
        keep = {"optimizer": _RESUME_OPTIMIZER_CHANGEABLE, "task": _RESUME_TASK_CHANGEABLE}.get(section, set())
        old = before.get(section, {})
        for key, value in values.items():
            if key not in keep and old.get(key) != value:
                changed.append(f"{section}.{key}: {old.get(key)!r} -> {value!r}")
    if changed:
        # Translators: {changes} lists settings as "model.d_model: 128 -> 256", separated by "; ".
        raise CheckpointError(
            _("these settings changed since the checkpoint, so the run cannot continue from it: {changes}. "
              "Undo them to resume, or start a new run (to change the method or task of a trained model, fine-tune from it)").format(
                changes="; ".join(changed)
            )
        )


def run_events_of(run: RunDir) -> list[Event]:
    """Kept for callers that predate ``RunDir.read_events``."""
    return run.read_events()
