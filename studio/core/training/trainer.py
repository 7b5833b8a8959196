"""``Trainer.fit``: the one training loop. The CLI, the GUI and torchrun all call it.

It reports through events (``studio.core.events``) to callbacks, and listens to a ``RunControl``
for stop and pause, checked between optimizer steps. Everything it needs to continue exactly
(weights, optimizer, step, RNG states, early-stopping counters) goes into the ``last``
checkpoint, so ``Trainer.resume`` picks up where a stopped or interrupted run left off.
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

from studio.core.callbacks import Callback, Dispatcher, LogWriter, MetricsWriter
from studio.core.config import RunConfig
from studio.core.control import Cancelled, RunControl
from studio.core.data.prepare import PreparedCorpus, prepare_corpus
from studio.core.data.tokenizers import Tokenizer
from studio.core.errors import CheckpointError, StudioError, TrainingError
from studio.core.events import (
    CheckpointSaved,
    DataProgress,
    DataReady,
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
from studio.core.inference.generate import SamplingSettings, generate_text
from studio.core.models.base import LanguageModel, estimate_training_memory
from studio.core.models.registry import build_model
from studio.core.runs.run_dir import RunDir, RunInfoWriter, hold_run_lock, release_run_lock
from studio.core.training.batches import WindowSampler, eval_windows
from studio.core.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from studio.core.training.device import DeviceChoice, choose_device, torch_threads
from studio.core.training.distributed import DistributedEnv
from studio.core.training.schedules import lr_at


@dataclass
class RunResult:
    status: str  # finished | stopped | early_stopped | failed
    step: int
    best_loss: float
    run_dir: Path
    error: str = ""


class _LossModule(nn.Module):
    """Routes the model's own loss through ``forward`` so DDP and torch.compile see the call."""

    def __init__(self, model: LanguageModel):
        super().__init__()
        self.model = model

    def forward(self, windows: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return self.model.training_loss(windows, generator)


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
            sinks = [MetricsWriter(run.metrics_path), LogWriter(run.log_path), RunInfoWriter(run), *callbacks]
        emit = Dispatcher(sinks)
        self._emit = emit
        self.progress = _Progress()
        self.model: LanguageModel | None = None
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
        if self.resume_requested:
            assert self.run is not None
            resume_ckpt = _load_resumable(self.run)
            _check_same_model(resume_ckpt.config, cfg)

        prepared = self._prepare_data(control, resume_ckpt.tokenizer if resume_ckpt else None)
        tokenizer = prepared.tokenizer
        self.tokenizer = tokenizer
        vocab_size = tokenizer.vocab_size
        train_tokens = prepared.tokens("train")
        valid_tokens = prepared.tokens("valid")
        window = cfg.model.context_length + 1

        torch.manual_seed(cfg.train.seed)
        model = resume_ckpt.build_model(device) if resume_ckpt else build_model(cfg.model, vocab_size).to(device)
        self.model = model
        optimizer = _make_optimizer(model, cfg)
        sampler = WindowSampler(train_tokens, window, cfg.train.batch_size, cfg.train.seed + 1000 * self.dist.rank)
        mask_generator = torch.Generator().manual_seed(cfg.train.seed + 1)
        self.sampler, self.mask_generator, self.optimizer = sampler, mask_generator, optimizer
        evaluation = eval_windows(valid_tokens, window, cfg.train.eval_batches * cfg.train.batch_size) if len(valid_tokens) else None
        if evaluation is None:
            emit(LogMessage("warning", "there is no validation split: no validation loss, best checkpoint or early stopping"))

        p = self.progress
        if resume_ckpt is not None:
            rng = resume_ckpt.load_training_state(optimizer)
            s = resume_ckpt.state
            p.step, p.tokens_seen, p.elapsed_s = int(s["step"]), int(s["tokens_seen"]), float(s["elapsed_s"])
            p.best_loss = float(s["best_loss"]) if s.get("best_loss") is not None else math.inf
            p.best_step = int(s.get("best_step", 0))
            p.evals_without_improvement = int(s.get("evals_without_improvement", 0))
            p.last_saved_step = p.step
            torch.set_rng_state(rng["torch"])
            sampler.generator.set_state(rng["sampler"])
            mask_generator.set_state(rng["mask"])
            if "cuda" in rng and device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], device)

        total_steps = _total_steps(cfg, len(train_tokens), self.dist.world_size)
        per_step_tokens = cfg.train.batch_size * cfg.train.grad_accum_steps * cfg.model.context_length * self.dist.world_size
        estimate = estimate_training_memory(cfg.model, vocab_size, cfg.train.batch_size, cfg.model.context_length, cfg.optimizer.name)
        emit(
            RunStarted(
                run_dir=str(self.run.path) if self.run else "",
                name=cfg.run.name or (self.run.name if self.run else ""),
                arch=cfg.model.arch,
                parameters=model.num_parameters(),
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

        loss_module: nn.Module = _LossModule(model)
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
            for micro in range(accum):
                windows = sampler.sample().to(device, non_blocking=True)
                sync = contextlib.nullcontext()
                if self.dist.enabled and micro < accum - 1:
                    sync = loss_module.no_sync()  # type: ignore[operator]
                with sync, choice.autocast():
                    loss = loss_module(windows, mask_generator)
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
            p.tokens_seen += per_step_tokens
            dt = time.perf_counter() - t0
            p.elapsed_s += dt
            p.recent.append((dt, per_step_tokens))
            step_loss = self.dist.mean(loss_total / accum, device)
            tokens_per_s = sum(n for _, n in p.recent) / max(1e-9, sum(t for t, _ in p.recent))
            emit(StepLogged(p.step, total_steps, step_loss, lr, grad_norm, tokens_per_s, p.tokens_seen, p.elapsed_s))

            at_end = p.step == total_steps
            if evaluation is not None and (p.step % cfg.train.eval_interval == 0 or at_end):
                t_eval = time.perf_counter()
                improved, stop_early = self._evaluate(evaluation, device, choice)
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
        return status, reason

    # ------------------------------------------------------------------------------------------

    def _prepare_data(self, control: RunControl, tokenizer: Tokenizer | None) -> PreparedCorpus:
        emit = self._emit
        emit(LogMessage("info", "preparing data"))

        def progress(stage: str, done: int, total: int) -> None:
            emit(DataProgress(stage, done, total))

        cfg = self.config
        # Rank 0 builds the token cache while the other ranks wait, then they read it.
        if self.dist.enabled and not self.dist.is_main:
            self.dist.barrier()
        # Resuming encodes with the checkpoint's own tokenizer (usually a cache hit).
        prepared = prepare_corpus(cfg.data, cfg.tokenizer, progress=progress, control=control, tokenizer=tokenizer)
        if self.dist.enabled and self.dist.is_main:
            self.dist.barrier()
        st = prepared.stats.splits
        emit(
            DataReady(
                cache_hit=prepared.cache_hit,
                seconds=prepared.seconds,
                vocab_size=prepared.tokenizer.vocab_size,
                tokenizer=prepared.tokenizer.describe(),
                train_tokens=st["train"].tokens,
                valid_tokens=st["valid"].tokens,
                test_tokens=st["test"].tokens,
                encodings=tuple(f["encoding"] for f in prepared.stats.files),
            )
        )
        return prepared

    @torch.no_grad()
    def _evaluate(self, windows: torch.Tensor, device: torch.device, choice: DeviceChoice) -> tuple[bool, bool]:
        cfg, p, model = self.config, self.progress, self.model
        assert model is not None and self.tokenizer is not None
        loss = evaluate_loss(model, windows, cfg.train.batch_size, device, choice, seed=cfg.train.seed + 2)
        improved = loss < p.best_loss - cfg.train.early_stopping_min_delta
        if improved:
            p.best_loss, p.best_step, p.evals_without_improvement = loss, p.step, 0
        else:
            p.evals_without_improvement += 1
        sample = ""
        if cfg.train.sample_tokens and cfg.model.objective != "masked" and self.dist.is_main:
            settings = SamplingSettings(max_new_tokens=cfg.train.sample_tokens, temperature=0.8, seed=cfg.train.seed + p.step)
            sample = generate_text(model, self.tokenizer, cfg.train.sample_prompt, settings)
        self._emit(EvalLogged(p.step, loss, math.exp(min(loss, 50.0)), p.best_loss, improved, p.tokens_seen, p.elapsed_s, sample))
        patience = cfg.train.early_stopping_patience
        return improved, bool(patience and p.evals_without_improvement >= patience)

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
            rng = {"torch": torch.get_rng_state(), "sampler": self.sampler.generator.get_state(), "mask": self.mask_generator.get_state()}
            device = next(self.model.parameters()).device
            if device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state(device)
        path = save_checkpoint(
            self.run.checkpoint(label), model=self.model, config=self.config, tokenizer=self.tokenizer,
            state=self._state(), optimizer=optimizer, rng=rng,
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


def evaluate_loss(
    model: LanguageModel, windows: torch.Tensor, batch_size: int, device: torch.device, choice: DeviceChoice | None = None, seed: int = 0
) -> float:
    """Mean loss over ``windows`` in eval mode. Masked-LM masks come from a fixed seed, so repeated
    evaluations of the same model agree exactly."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    ctx = choice.autocast() if choice else contextlib.nullcontext()
    try:
        with torch.no_grad(), ctx:
            for i in range(0, len(windows), batch_size):
                batch = windows[i : i + batch_size].to(device)
                total += float(model.training_loss(batch, generator)) * len(batch)
                count += len(batch)
    finally:
        model.train(was_training)
    return total / max(1, count)


def _total_steps(cfg: RunConfig, train_tokens: int, world: int) -> int:
    if cfg.train.epochs > 0:
        per_step = cfg.train.batch_size * cfg.train.grad_accum_steps * cfg.model.context_length * world
        return max(1, math.ceil(cfg.train.epochs * train_tokens / per_step))
    return cfg.train.steps


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
