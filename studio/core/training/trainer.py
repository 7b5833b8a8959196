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
import math
import time
import traceback
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from studio.core.callbacks import Callback, Dispatcher, LogWriter, MetricsWriter, SamplesWriter
from studio.core.config import RunConfig
from studio.core.control import Cancelled, RunControl
from studio.core.data.tokenizers import Tokenizer, train_tokenizer
from studio.core.errors import CheckpointError, StudioError, TrainingError
from studio.core.events import (
    CheckpointSaved,
    EvalLogged,
    Event,
    LogMessage,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    StepLogged,
)
from studio.core.models.base import LanguageModel, estimate_training_memory
from studio.core.models.registry import build_model
from studio.core.runs import tensorboard
from studio.core.runs.run_dir import RunDir, RunInfoWriter, hold_run_lock, release_run_lock
from studio.core.tasks.model import count_parameters, language_model_of
from studio.core.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from studio.core.training.device import DeviceChoice, choose_device, torch_threads
from studio.core.training.distributed import DistributedEnv
from studio.core.training.schedules import lr_at
from studio.core.training.workload import Emit, LanguageModelWorkload, Workload, evaluate_loss  # noqa: F401 - re-exported


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


@dataclass
class _Progress:
    """Counters that go into every checkpoint."""

    step: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    best_loss: float = math.inf
    best_step: int = 0
    evals_without_improvement: int = 0
    last_saved_step: int = -1
    recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=20))


class Trainer:
    def __init__(self, config: RunConfig, run: RunDir | None = None, *, out: Path | None = None, resume: bool = False):
        self.config = config
        self.dist = DistributedEnv.from_environ()
        if run is None:
            if resume:
                raise ValueError("resume needs an existing run")
            run = RunDir.create(config, out) if self.dist.is_main else None
        self.run = run
        self.resume_requested = resume

    @classmethod
    def resume(cls, ref: str | Path, overrides: Iterable[str] = ()) -> Trainer:
        """Continue a run from its ``last`` checkpoint; overrides (e.g. more steps) are saved to its config."""
        run = RunDir.open(ref)
        config = run.load_config()
        overrides = list(overrides)
        if overrides:
            config = config.with_overrides(overrides)
            config.save(run.config_path)
        return cls(config, run, resume=True)

    # ------------------------------------------------------------------------------------------

    def fit(self, callbacks: Sequence[Callback] = (), control: RunControl | None = None) -> RunResult:
        control = control or RunControl()
        run = self.run
        sinks: list[Callback] = []
        if self.dist.is_main and run is not None:
            sinks = [MetricsWriter(run.metrics_path), LogWriter(run.log_path), SamplesWriter(run.path / "samples.jsonl"),
                     RunInfoWriter(run), *callbacks]
            if tensorboard.available():
                sinks.append(tensorboard.TensorBoardWriter(run.path / "tensorboard"))
        emit = Dispatcher(sinks)
        self._emit = emit
        self.progress = _Progress()
        self.model: nn.Module | None = None
        self.tokenizer: Tokenizer | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        lock = hold_run_lock(run.path) if (run is not None and self.dist.is_main) else None
        choice: DeviceChoice | None = None
        try:
            choice = choose_device(self.config.run, self.dist.local_rank if self.dist.enabled else None)
            with torch_threads(choice.threads):
                self.dist.init(choice.device)
                status, reason = self._fit(choice, control)
            emit(RunFinished(status, self.progress.step, self.progress.best_loss, self.progress.elapsed_s, reason))
            return RunResult(status, self.progress.step, self.progress.best_loss, run.path if run else Path())
        except Cancelled:
            emit(RunFinished("stopped", self.progress.step, self.progress.best_loss, self.progress.elapsed_s, "stopped before training began"))
            return RunResult("stopped", self.progress.step, self.progress.best_loss, run.path if run else Path())
        except Exception as e:  # noqa: BLE001 - every failure becomes a truthful "failed" event
            message = self._explain(e, choice)
            saved = self._save_after_failure(e)
            emit(RunFailed(self.progress.step, message, traceback.format_exc(), saved))
            return RunResult("failed", self.progress.step, self.progress.best_loss, run.path if run else Path(), message)
        finally:
            release_run_lock(lock)
            self.dist.close()

    # ------------------------------------------------------------------------------------------

    def _fit(self, choice: DeviceChoice, control: RunControl) -> tuple[str, str]:
        cfg = self.config
        emit = self._emit
        device = choice.device
        resume_ckpt: Checkpoint | None = None
        base_model: LanguageModel | None = None
        tokenizer: Tokenizer | None = None
        if self.resume_requested:
            assert self.run is not None
            resume_ckpt = _load_resumable(self.run)
            _check_same_model(resume_ckpt.config, cfg)
            tokenizer = resume_ckpt.tokenizer
        elif cfg.finetune.base:
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
        model = workload.build_model().to(device)
        if resume_ckpt is not None:
            resume_ckpt.load_weights(model)
        self.model = model
        optimizer = _make_optimizer(model, cfg)
        self.optimizer = optimizer

        p = self.progress
        if resume_ckpt is not None:
            rng = resume_ckpt.load_training_state(optimizer)
            s = resume_ckpt.state
            p.step, p.tokens_seen, p.elapsed_s = int(s["step"]), int(s["tokens_seen"]), float(s["elapsed_s"])
            p.best_loss = float(s["best_loss"]) if s.get("best_loss") is not None else math.inf
            p.best_step = int(s.get("best_step", 0))
            p.evals_without_improvement = int(s.get("evals_without_improvement", 0))
            p.last_saved_step = p.step
            torch.set_rng_state(rng.pop("torch"))
            cuda_state = rng.pop("cuda", None)
            if cuda_state is not None and device.type == "cuda":
                torch.cuda.set_rng_state(cuda_state, device)
            workload.load_rng_states(rng)

        total_steps = workload.total_steps(cfg, self.dist.world_size)
        vocab_size = workload.tokenizer.vocab_size
        estimate = estimate_training_memory(cfg.model, vocab_size, cfg.train.batch_size, cfg.model.context_length, cfg.optimizer.name)
        all_params, trainable = count_parameters(model)
        if trainable < all_params:
            emit(LogMessage("info", f"{trainable:,} of {all_params:,} parameters learn ({cfg.finetune.method})"))
        emit(
            RunStarted(
                run_dir=str(self.run.path) if self.run else "",
                name=cfg.run.name or (self.run.name if self.run else ""),
                arch=cfg.model.arch,
                parameters=all_params,
                total_steps=total_steps,
                start_step=p.step,
                device=choice.describe() + (f" x{self.dist.world_size} ranks" if self.dist.enabled else ""),
                threads=torch.get_num_threads(),
                resumed=resume_ckpt is not None,
                memory_estimate=estimate.describe(),
            )
        )
        if resume_ckpt is not None and p.step >= total_steps:
            return "finished", f"already at step {p.step} of {total_steps}; raise train.steps to train further"

        loss_module: nn.Module = _LossModule(model, workload)
        if self.dist.enabled:
            loss_module = nn.parallel.DistributedDataParallel(loss_module, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.run.compile:
            emit(LogMessage("info", "compiling the model (torch.compile); the first steps are slow"))
            loss_module = torch.compile(loss_module)  # type: ignore[assignment]
        params = [q for q in model.parameters() if q.requires_grad]
        clip = cfg.train.grad_clip if cfg.train.grad_clip > 0 else math.inf
        accum = cfg.train.grad_accum_steps
        checkpoint_every = cfg.train.checkpoint_interval or cfg.train.eval_interval
        status, reason = "finished", ""
        model.train()

        while p.step < total_steps:
            if control.pause_requested:
                paused_at = p.step
                control.wait_while_paused(
                    lambda: emit(RunPaused(paused_at)), lambda: emit(RunResumed(paused_at))  # noqa: B023 - called right here
                )
            if self.dist.any_true(control.stop_requested, device):
                status, reason = "stopped", "stopped by request"
                break

            t0 = time.perf_counter()
            lr = lr_at(p.step, cfg.train.lr, total_steps, cfg.schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_total = 0.0
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
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise TrainingError(
                        f"the loss became {loss_value} at step {p.step + 1}: training diverged. Lower train.lr "
                        f"(now {cfg.train.lr:g}), keep train.grad_clip above 0, or lengthen schedule.warmup_steps"
                    )
                loss_total += loss_value
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            p.step += 1
            step_tokens *= self.dist.world_size
            p.tokens_seen += step_tokens
            dt = time.perf_counter() - t0
            p.elapsed_s += dt
            p.recent.append((dt, step_tokens))
            step_loss = self.dist.mean(loss_total / accum, device)
            tokens_per_s = sum(n for _, n in p.recent) / max(1e-9, sum(t for t, _ in p.recent))
            emit(StepLogged(p.step, total_steps, step_loss, lr, grad_norm, tokens_per_s, p.tokens_seen, p.elapsed_s))

            at_end = p.step == total_steps
            if p.step % cfg.train.eval_interval == 0 or at_end:
                t_eval = time.perf_counter()
                improved, stop_early = self._evaluate(device, choice)
                p.elapsed_s += time.perf_counter() - t_eval
                if improved:
                    self._save("best")
                if stop_early:
                    status = "early_stopped"
                    reason = f"no improvement for {cfg.train.early_stopping_patience} evaluations; best at step {p.best_step}"
                    break
            if p.step % checkpoint_every == 0 and not at_end:
                self._save("last")

        if p.last_saved_step != p.step:
            self._save("last")
        if status != "stopped" and cfg.task.kind != "lm" and self.dist.is_main:
            self._final_results(device)
        return status, reason

    def _load_base(self) -> tuple[LanguageModel, Tokenizer]:
        """The base run's language model (adapters merged, head dropped) and tokenizer. The run's
        config takes the base's model settings, so the run folder describes what was trained."""
        from studio.core.inference.loading import resolve_checkpoint

        path, _ = resolve_checkpoint(self.config.finetune.base, self.config.finetune.base_checkpoint)
        base = load_checkpoint(path)
        model = language_model_of(base.build_model("cpu"))
        self.config = self.config.replace(model=base.config.model)
        if self.run is not None:
            self.config.save(self.run.config_path)
        self._emit(LogMessage("info", f"fine-tuning from {path} (step {base.step}, {base.config.model.label})"))
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
        self._emit(EvalLogged(
            p.step, result.loss, math.exp(min(result.loss, 50.0)), p.best_loss, improved, p.tokens_seen, p.elapsed_s,
            result.sample, tuple(sorted(result.metrics.items())),
        ))
        patience = cfg.train.early_stopping_patience
        return improved, bool(patience and p.evals_without_improvement >= patience)

    def _final_results(self, device: torch.device) -> None:
        """Score the best checkpoint on the whole validation and test splits; keep results.json."""
        import json

        assert self.model is not None
        if self.run is not None and (self.run.checkpoint("best") / "model.safetensors").exists():
            load_checkpoint(self.run.checkpoint("best")).load_weights(self.model)
        self.model.eval()
        results = self.workload.final_results(self.model, device, self._emit)
        if self.run is not None and results:
            (self.run.path / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")

    def _state(self) -> dict[str, object]:
        p = self.progress
        return {
            "step": p.step,
            "tokens_seen": p.tokens_seen,
            "elapsed_s": p.elapsed_s,
            "best_loss": p.best_loss if math.isfinite(p.best_loss) else None,
            "best_step": p.best_step,
            "evals_without_improvement": p.evals_without_improvement,
            "scheduler": {"kind": self.config.schedule.decay, "step": p.step},
        }

    def _save(self, label: str) -> None:
        if not self.dist.is_main or self.run is None:
            return
        assert self.model is not None and self.tokenizer is not None
        rng = None
        optimizer = None
        if label == "last":
            optimizer = self.optimizer
            rng = {"torch": torch.get_rng_state(), **self.workload.rng_states()}
            device = next(self.model.parameters()).device
            if device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state(device)
        path = save_checkpoint(
            self.run.checkpoint(label), model=self.model, config=self.config, tokenizer=self.tokenizer,
            state={**self._state(), **self.workload.checkpoint_extra()}, optimizer=optimizer, rng=rng,
        )
        if label == "last":
            self.progress.last_saved_step = self.progress.step
        self._emit(CheckpointSaved(self.progress.step, str(path), label))

    def _save_after_failure(self, error: BaseException) -> str:
        """Keep the work done so far, unless the failure itself may have corrupted the weights."""
        p = self.progress
        previous = str(self.run.checkpoint("last")) if self.run and p.last_saved_step > 0 else ""
        model = self.model
        if (
            model is None
            or self.optimizer is None
            or p.step <= p.last_saved_step
            or isinstance(error, TrainingError)
            or not all(bool(torch.isfinite(q).all()) for q in model.parameters())
        ):
            return previous
        try:
            self._save("last")
        except Exception:  # noqa: BLE001 - the original error is what the user must see
            return previous
        return str(self.run.checkpoint("last")) if self.run else ""

    def _explain(self, error: BaseException, choice: DeviceChoice | None) -> str:
        cfg = self.config
        if isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower():
            estimate = ""
            if self.tokenizer is not None:
                estimate = estimate_training_memory(
                    cfg.model, self.tokenizer.vocab_size, cfg.train.batch_size, cfg.model.context_length, cfg.optimizer.name
                ).describe()
            where = choice.device if choice else "the device"
            return (
                f"out of memory on {where} with batch {cfg.train.batch_size} x context {cfg.model.context_length}. "
                f"Estimate: {estimate}. Lower train.batch_size (raise train.grad_accum_steps to keep the effective batch), "
                "shorten model.context_length, or pick a smaller model"
            )
        if isinstance(error, StudioError):
            return str(error)
        return f"{type(error).__name__}: {error}"


# ---- helpers ---------------------------------------------------------------------------------


def make_workload(config: RunConfig, emit: Emit, control: RunControl, tokenizer: Tokenizer | None,
                  base: LanguageModel | None, rank: int = 0) -> Workload:
    """Language modelling on [data], or the task in [task] on a base (a new model if none)."""
    if config.task.kind == "lm":
        return LanguageModelWorkload(config, emit, control, tokenizer, base, rank)
    from studio.core.tasks.workload import TaskWorkload, resolve_examples

    if tokenizer is None:
        # Training a task from scratch: the vocabulary comes from the task's own training text.
        emit(LogMessage("info", f"no base model: training a {config.tokenizer.kind} tokenizer on the task's examples"))
        train, _, _ = resolve_examples(config)
        texts = [t for e in train for t in (e.question, e.source, e.target) if t]
        tokenizer = train_tokenizer(config.tokenizer, texts)
    if base is None:
        base = build_model(config.model, tokenizer.vocab_size)
    return TaskWorkload(config, emit, base, tokenizer, None, rank)


def _make_optimizer(model: nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """Weight decay on matrices and embeddings only; biases and norm gains are left alone."""
    decay, keep = [], []
    seen: set[int] = set()
    for q in model.parameters():
        if id(q) in seen or not q.requires_grad:
            continue
        seen.add(id(q))
        (decay if q.dim() >= 2 else keep).append(q)
    o = cfg.optimizer
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": keep, "weight_decay": 0.0}]
    lr = cfg.train.lr
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps)
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps)
    return torch.optim.SGD(groups, lr=lr, momentum=o.momentum)


def _load_resumable(run: RunDir) -> Checkpoint:
    path = run.checkpoint("last")
    if not path.exists():
        raise CheckpointError(f"{run.path} has no checkpoint to resume from yet (it stopped before its first save)")
    ckpt = load_checkpoint(path)
    if not ckpt.resumable:
        raise CheckpointError(f"{path} holds weights only and cannot be resumed")
    return ckpt


def _check_same_model(saved: RunConfig, now: RunConfig) -> None:
    before, after = saved.model.to_dict(), now.model.to_dict()
    changed = [f"model.{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in after if before.get(k) != after.get(k)]
    if changed:
        raise CheckpointError("the model settings changed since the checkpoint, so it cannot be resumed: " + "; ".join(changed))


def run_events_of(run: RunDir) -> list[Event]:
    """Read a run's metrics.jsonl back as events (for plots of finished runs)."""
    import json

    from studio.core.events import event_from_dict

    out = []
    if run.metrics_path.exists():
        for line in run.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                event = event_from_dict(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if event is not None:
                out.append(event)
    return out
