"""``studio`` on the command line: the same engine as the window, without it.

    studio train CONFIG.toml|PRESET [--set section.key=value ...] [--out DIR]
    studio finetune CONFIG.toml|PRESET --set finetune.base=RUN [--set ...]
    studio resume RUN [--set ...]
    studio generate RUN --prompt TEXT [--max-tokens N --temperature T --top-k K --top-p P --beam N]
    studio eval RUN [--split valid|test|all]
    studio inspect-model RUN --text TEXT [--top-k K --temperature T --top-p P --target TEXT]
    studio search SPEC.toml [--promote STEPS] [--resume [FOLDER]] [--report [FOLDER]]
    studio export RUN --out DIR|FILE [--zip] [--merge-lora] [--force]
    studio presets | runs | datasets [download NAME] | inspect FILE...
    studio worker ...            (the window's training process; not for people)
    studio decode-worker         (the window's decoding process; not for people)

Exit status: 0 finished (or stopped early by the early-stopping rule), 130 stopped by Ctrl-C or
SIGTERM (state saved), 1 failed, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # the engine loads only when a command needs it: `studio --help` stays instant
    from studio.core.inference.insight import Predictions

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    # Built when the command runs, after the language is chosen, so every help text is translated.
    from studio.cli.argparse_text import translate_argparse
    from studio.core.i18n import _

    translate_argparse()
    parser = argparse.ArgumentParser(prog="studio", description=_("Train, resume, evaluate and sample language models."))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       # Translators: --set and train.lr=3e-4 are written as is.
                       help=_("override a setting, e.g. --set train.lr=3e-4 (repeatable)"))

    p = sub.add_parser("train", help=_("train a model from a config file or preset"))
    # Translators: "studio presets" is a command, kept as is.
    p.add_argument("config", help=_("a config .toml file, or a preset name (see: studio presets)"))
    overrides(p)
    p.add_argument("--out", help=_("folder to create the run in (default: the user data folder)"))
    p.add_argument("--quiet", action="store_true", help=_("no progress bar or samples"))

    p = sub.add_parser("resume", help=_("continue a stopped or interrupted run from its last checkpoint"))
    p.add_argument("run", help=_("run folder, or its name"))
    overrides(p)
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("generate", help=_("sample text from a trained model"))
    p.add_argument("run", help=_("run folder or name, or a checkpoint folder"))
    # Translators: <mask> is written as is.
    p.add_argument("--prompt", default="", help=_("text to continue (BERT: text with <mask>)"))
    p.add_argument("--checkpoint", default="auto", choices=["auto", "best", "last"])
    p.add_argument("--max-tokens", type=int, default=200, help=_("the most tokens to write"))
    p.add_argument("--temperature", type=float, default=0.8, help=_("0 picks the most likely token each time"))
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--beam", type=int, default=0, help=_("beam search with this many beams"))
    p.add_argument("--context", default="", help=_("question answering: the passage"))
    p.add_argument("--question", default="", help=_("question answering: the question"))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="cpu")

    p = sub.add_parser("inspect-model", help=_("show, at each token of a text, what a trained model predicts there and how surprised it is"))
    p.add_argument("run", help=_("run folder or name, or a checkpoint folder"))
    p.add_argument("--text", required=True, help=_("the text to read"))
    p.add_argument("--target", default=None, help=_("encoder-decoder: the target it predicts from the text (default: the text's second half)"))
    p.add_argument("--top-k", type=int, default=5, help=_("how many candidates to show at each position"))
    p.add_argument("--temperature", type=float, default=1.0, help=_("the probabilities as sampling at this temperature sees them; 0: what greedy decoding picks"))
    p.add_argument("--top-p", type=float, default=1.0, help=_("the probabilities after sampling's top-p cut; 1 turns it off"))
    p.add_argument("--checkpoint", default="auto", choices=["auto", "best", "last"])
    p.add_argument("--device", default="cpu")

    # Translators: [task] and [finetune] are sections of a config file, kept as is.
    p = sub.add_parser("finetune", help=_("the same as train; for configs with [task] and [finetune] sections"))
    p.add_argument("config")
    overrides(p)
    p.add_argument("--out")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("search", help=_("hyperparameter search (grid, random, TPE, CMA-ES, GP; pruning, k-fold) from a spec file"))
    p.add_argument("spec", nargs="?", help=_("a search spec .toml (see docs/search.md), or a search folder"))
    p.add_argument("--promote", type=int, default=0, metavar="STEPS", help=_("then train the best configuration for this many steps"))
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="FOLDER",
                   help=_("continue a stopped or interrupted search (default: the newest search of this spec)"))
    p.add_argument("--report", nargs="?", const="", default=None, metavar="FOLDER",
                   help=_("summarize a search: best trial, parameter importance, trials (default: the newest search of this spec)"))
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("export", help=_("copy a run's model (weights, config, tokenizer, model card) to a folder or zip"))
    p.add_argument("run")
    p.add_argument("--out", required=True, help=_("destination folder (or .zip with --zip)"))
    p.add_argument("--checkpoint", default="auto", choices=["auto", "best", "last"])
    p.add_argument("--merge-lora", action="store_true", help=_("fold LoRA adapters into the base weights"))
    # Translators: OUT is the value of --out, written as is.
    p.add_argument("--zip", action="store_true", help=_("write a zip archive (OUT, or OUT.zip)"))
    p.add_argument("--force", action="store_true", help=_("replace OUT if it already exists"))

    p = sub.add_parser("eval", help=_("loss and perplexity (or the task metric) on the validation and test splits"))
    p.add_argument("run")
    p.add_argument("--checkpoint", default="auto", choices=["auto", "best", "last"])
    p.add_argument("--split", default="all", choices=["valid", "test", "all"])
    p.add_argument("--device", default="cpu")

    p = sub.add_parser("worker", help=argparse.SUPPRESS)  # the window's training process (studio/core/runs/worker_protocol.py)
    p.add_argument("--config", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--resume", type=Path)
    p.add_argument("--search", type=Path)
    p.add_argument("--search-folder", type=Path)  # resume the search in this folder (with or without --search)

    # The window's decoding process (studio/core/inference/decode_process.py).
    sub.add_parser("decode-worker", help=argparse.SUPPRESS)

    sub.add_parser("presets", help=_("list the shipped example configs"))
    sub.add_parser("runs", help=_("list runs in the user data folder"))

    p = sub.add_parser("datasets", help=_("list built-in datasets, or download one"))
    p.add_argument("action", nargs="?", default="list", choices=["list", "download"])
    p.add_argument("name", nargs="?")

    p = sub.add_parser("inspect", help=_("detect encodings and show statistics of corpus files"))
    p.add_argument("paths", nargs="+")
    p.add_argument("--format", default="auto", choices=["auto", "text", "csv", "tsv", "jsonl"])
    p.add_argument("--column", default="text")
    p.add_argument("--field", default="text")
    p.add_argument("--tokenizer", default="char", choices=["char", "word", "bpe"])
    p.add_argument("--language", default="en")
    p.add_argument("--vocab-size", type=int, default=8000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from studio.core.errors import ConfigError, StudioError
    from studio.core.fileio import describe_os_error
    from studio.core.i18n import _

    handler: Callable[[argparse.Namespace], int] = globals()[f"cmd_{args.command.replace('-', '_')}"]
    # Every failure is one paragraph on the terminal, never a traceback: the person gets what
    # went wrong and what to do, and the traceback goes to a log file for whoever debugs it.
    try:
        return handler(args)
    except ConfigError as e:
        _say(str(e))
        return EXIT_USAGE
    except StudioError as e:
        _say(str(e))
        return EXIT_FAILED
    except ValueError as e:
        _say(str(e))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say(_("interrupted"))
        return EXIT_STOPPED
    except OSError as e:
        log = _log_traceback(args)
        # Translators: {log} is the file the traceback was written to.
        _say(describe_os_error(e) + (_(" (details in {log})").format(log=log) if log else ""))
        return EXIT_FAILED
    except Exception as e:  # noqa: BLE001 - a bug: still one paragraph, with where the details are
        log = _log_traceback(args)
        # Translators: {error} is a Python error as Python writes it (ValueError: ...), in English.
        message = _("unexpected error: {error}").format(error=f"{type(e).__name__}: {e}")
        if log:
            # Translators: {log} is the file the traceback was written to.
            message += _(". The details are in {log}; please report them").format(log=log)
        _say(message)
        return EXIT_FAILED


def _say(text: str) -> None:
    try:
        print(f"studio: {text}", file=sys.stderr)
    except OSError:
        pass  # no terminal left to tell


def _log_traceback(args: argparse.Namespace) -> str:
    """Append the current traceback to the run's log.txt when the command was about a run, else
    to the user data folder's studio-errors.log. Returns the file's path ('' if none could be written)."""
    import traceback

    from studio.core.paths import data_dir

    text = f"{time.strftime('%Y-%m-%d %H:%M:%S')}  studio {args.command} failed\n{traceback.format_exc()}\n"
    candidates = []
    ref = getattr(args, "run", None)
    if ref:
        try:
            from studio.core.training.run_dir import RunDir

            candidates.append(RunDir.open(ref).log_path)
        except Exception:  # noqa: BLE001 - no run to write to: fall back to the user log
            pass
    try:
        candidates.append(data_dir() / "studio-errors.log")
    except OSError:
        pass
    for path in candidates:
        try:
            with path.open("a", encoding="utf-8") as f:
                f.write(text)
            return str(path)
        except OSError:
            continue
    return ""


# ---- train / resume ----------------------------------------------------------------------------


def _stop_signals(control: object, what: str | None = None) -> Callable[[], None]:
    """Ctrl-C, SIGTERM (what Slurm, systemd and `kill` send) and SIGHUP (the terminal closed) ask
    the run to stop after the current step and save; a second signal aborts without saving.
    ``what`` says what happens now, already translated. Returns a function that puts the previous
    handlers back."""
    from studio.core.control import RunControl
    from studio.core.i18n import _

    assert isinstance(control, RunControl)
    presses = 0
    doing = what if what is not None else _("stopping after this step and saving")

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            name = {signal.SIGINT: "Ctrl-C"}.get(signum, signal.Signals(signum).name)
            # Translators: {signal} is Ctrl-C or a signal's name (SIGTERM); {what} what happens now.
            _say(_("{signal}: {what} (press Ctrl-C again to abort without saving)").format(signal=name, what=doing))
            control.request_stop()
        else:
            raise KeyboardInterrupt

    wanted = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {}
    for sig in wanted:
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except (ValueError, OSError):  # not the main thread, or not allowed here
            pass

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _run_trainer(trainer: object, quiet: bool) -> int:
    from studio.cli.progress import TerminalProgress
    from studio.core.control import RunControl
    from studio.core.i18n import _
    from studio.core.training.trainer import Trainer

    assert isinstance(trainer, Trainer)
    control = RunControl()
    restore = _stop_signals(control)
    try:
        callbacks = [] if quiet else [TerminalProgress()]
        result = trainer.fit(callbacks, control)
    finally:
        restore()
    if trainer.dist.is_main and result.run_dir != Path():
        print(_("run folder: {path}").format(path=result.run_dir))
    if result.status == "failed":
        if quiet:
            _say(result.error)
        code = EXIT_FAILED
    else:
        code = EXIT_STOPPED if result.status == "stopped" else EXIT_OK
    if trainer.dist.enabled:
        _leave_rank(code)
    return code


def _leave_rank(code: int) -> NoReturn:
    """End a torchrun rank without C++ teardown. With torch 2.13, a DistributedDataParallel model
    keeps gloo's process group alive past destroy_process_group (its three threads outlive it,
    even after the model is collected), and destroying those threads during interpreter exit
    sometimes aborted the rank ("terminate called without an active exception", exit -6 instead
    of 130). Everything of the run is written and closed by now; Python's own exit handlers still
    run, only the C++ destructors are skipped."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def cmd_train(args: argparse.Namespace) -> int:
    from studio.core.config import RunConfig
    from studio.core.resources import find_config
    from studio.core.training.trainer import Trainer

    config = RunConfig.load(find_config(args.config), args.overrides)
    return _run_trainer(Trainer(config, out=args.out), args.quiet)


def cmd_finetune(args: argparse.Namespace) -> int:
    return cmd_train(args)


def cmd_resume(args: argparse.Namespace) -> int:
    from studio.core.training.trainer import Trainer

    return _run_trainer(Trainer.resume(args.run, args.overrides), args.quiet)


def cmd_worker(args: argparse.Namespace) -> int:
    """The window's training process (and a parallel search's trials): see worker_protocol."""
    from studio.core.config import RunConfig
    from studio.core.errors import ConfigError
    from studio.core.runs.search import resume_spec, run_search
    from studio.core.runs.trials import SearchSpec
    from studio.core.runs.worker_protocol import ended, serve
    from studio.core.training.trainer import Trainer

    def work(callbacks: list[Any], control: Any) -> Any:
        if args.search_folder is not None:
            spec = resume_spec(args.search_folder, SearchSpec.load(args.search) if args.search is not None else None)
            board, folder = run_search(spec, callbacks, control, out=args.search_folder, resume=True)
            return ended("stopped" if control.stop_requested else "finished", len(board), math.inf, folder)
        if args.search is not None:
            board, folder = run_search(SearchSpec.load(args.search), callbacks, control)
            return ended("stopped" if control.stop_requested else "finished", len(board), math.inf, folder)
        if args.resume is not None:
            trainer = Trainer.resume(args.resume)
        elif args.config is not None:
            trainer = Trainer(RunConfig.load(args.config), out=args.out)
        else:
            raise ConfigError("studio worker needs --config, --resume or --search")
        result = trainer.fit(callbacks, control)
        return ended(result.status, result.step, result.best_loss, result.run_dir, result.error)

    return serve(work)


def cmd_decode_worker(args: argparse.Namespace) -> int:
    """The window's decoding process: see decode_process."""
    from studio.core.inference.decode_process import serve_decoding

    return serve_decoding()


# ---- using a model -----------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    from studio.core.decoding.masks import fill_mask
    from studio.core.decoding.options import DecodingSettings
    from studio.core.inference.loading import load_model
    from studio.core.inference.runner import TaskRunner

    loaded = load_model(args.run, args.checkpoint, args.device)
    print(f"[{loaded.label}]", file=sys.stderr)
    runner = TaskRunner(loaded)
    if runner.kind == "lm" and loaded.config.model.objective == "masked":
        for i, options in enumerate(fill_mask(runner.lm, loaded.tokenizer, args.prompt or "<mask>", top_k=5)):
            shown = ", ".join(f"{tok!r} {p:.1%}" for tok, p in options)
            print(f"<mask> {i + 1}: {shown}")
        return EXIT_OK
    if runner.kind == "classify":
        for label, p in runner.classify(args.prompt):
            print(f"{label}: {p:.1%}")
        return EXIT_OK
    mode = "beam" if args.beam else ("greedy" if args.temperature == 0 else "sample")
    decoding = DecodingSettings(mode, args.temperature, args.top_k, args.top_p, max(1, args.beam), max_new_tokens=args.max_tokens,
                                seed=args.seed)
    tab = {"lm": "generate", "translate": "translate", "summarize": "summarize", "qa": "ask"}[runner.kind]
    if runner.kind == "lm":
        sys.stdout.write(args.prompt)
    for token in runner.stream(tab, decoding, text=args.prompt, context=args.context or args.prompt, question=args.question):  # type: ignore[arg-type]
        sys.stdout.write(token.text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return EXIT_OK


def cmd_inspect_model(args: argparse.Namespace) -> int:
    from studio.core.decoding.options import DecodingSettings
    from studio.core.i18n import _
    from studio.core.inference.insight import MAX_CANDIDATES, ModelInsight

    if not 1 <= args.top_k <= MAX_CANDIDATES:
        # Translators: --top-k is an option, written as is.
        raise ValueError(_("--top-k must be between 1 and {most}").format(most=MAX_CANDIDATES))
    settings = DecodingSettings(mode="sample", temperature=args.temperature, top_p=args.top_p)
    settings.validate()  # before the model loads: a mistyped option fails at once
    view = ModelInsight.load(args.run, args.checkpoint, args.device)
    print(f"[{view.label}]", file=sys.stderr)
    predictions = view.predictions(view.read(args.text, args.target), settings, args.top_k)
    for line in _prediction_lines(predictions):
        print(line)
    return EXIT_OK


def _prediction_lines(predictions: Predictions) -> list[str]:
    """The top-k table (one row per token: the token, its surprisal, then the candidates for its
    place) and the surprisal summary, as ``inspect-model`` prints them."""
    from studio.core.i18n import _

    reading, settings = predictions.reading, predictions.settings
    lines = []
    if reading.objective == "seq2seq":
        # Translators: what an encoder-decoder's encoder read; {text} is that text, quoted.
        lines.append(_("source: {text}").format(text=repr(reading.source_text)))
    shown = _("greedy decoding (temperature 0)") if settings.greedy else _("temperature {temperature:g}, top-p {top_p:g}").format(
        temperature=settings.temperature, top_p=settings.top_p)
    if reading.objective == "masked":
        # Translators: {settings} is "temperature 1, top-p 1" or "greedy decoding (temperature 0)".
        lines.append(_("each token's candidates with that token masked out, at {settings}; surprisal at temperature 1").format(settings=shown))
    else:
        # Translators: {settings} is "temperature 1, top-p 1" or "greedy decoding (temperature 0)".
        lines.append(_("the candidates for each token's place, at {settings}; surprisal at temperature 1").format(settings=shown))
    # Translators: the last row of the table: the token that would come after the text.
    after = _("(next)")
    names = [repr(t.text) for t in reading.tokens] + [after]
    width = min(16, max(len(n) for n in names))
    for position in predictions.positions:
        name = names[position.index]
        # Translators: a token's surprisal; {bits} is a number like 3.25.
        bits = _("{bits:.2f} bits").format(bits=position.surprisal) if position.surprisal is not None else ""
        candidates = "  ".join(f"{c.text!r} {c.probability:.1%}" for c in position.candidates)
        lines.append(f"{position.index + 1:>4}  {name:<{width}}  {bits:>10}  | {candidates}")
    s = predictions.surprisal
    if s.bits_per_token is not None:
        per_char = f"{s.bits_per_character:.3f}" if s.bits_per_character is not None else "-"
        # Translators: the means of the surprisal; {tokens} and {characters} count the text read.
        lines.append(_("mean surprisal: {per_token:.3f} bits per token, {per_char} bits per character ({tokens} tokens, {characters} characters)").format(
            per_token=s.bits_per_token, per_char=per_char, tokens=len(s.bits), characters=reading.characters))
        surprising = ", ".join(_("{token} at {position} ({bits:.2f} bits)").format(token=repr(reading.tokens[i].text), position=i + 1, bits=s.bits[i])
                               for i in s.most_surprising)
        lines.append(_("most surprising: {tokens}").format(tokens=surprising))
    return lines


def cmd_eval(args: argparse.Namespace) -> int:
    from studio.core.inference.evaluation import evaluate
    from studio.core.inference.loading import load_model

    loaded = load_model(args.run, args.checkpoint, args.device)
    print(f"[{loaded.label}]")
    for score in evaluate(loaded, ["valid", "test"] if args.split == "all" else [args.split]):
        print(score.describe(), flush=True)
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from studio.core.callbacks import describe
    from studio.core.control import RunControl
    from studio.core.errors import ConfigError
    from studio.core.events import Event, LogMessage, TrialFinished, TrialPruned, TrialStarted
    from studio.core.i18n import _
    from studio.core.paths import data_dir
    from studio.core.runs.search import find_search, resume_spec, run_search
    from studio.core.runs.trials import SearchSpec, promote
    from studio.core.training.trainer import Trainer

    named_folder = Path(args.spec) if args.spec and Path(args.spec).is_dir() else None
    given = SearchSpec.load(args.spec) if args.spec and named_folder is None else None

    def folder_of(option: str) -> Path:
        """The folder --resume or --report names, else the folder given as SPEC, else the spec's newest search."""
        if option:
            return Path(option)
        if named_folder is not None:
            return named_folder
        if given is None:
            raise ConfigError(_("name a search spec (.toml) or a search folder"))
        found = find_search(given.name)
        if found is None:
            # Translators: {name} is the search's name from its spec; {root} the folder searches are kept in.
            raise ConfigError(_("there is no search called {name} in {root} yet").format(name=given.name, root=data_dir() / "searches"))
        return found

    if args.report is not None:
        from studio.core.runs.search_report import format_report, load_report

        print(format_report(load_report(folder_of(args.report))))
        return EXIT_OK
    resume = folder_of(args.resume) if args.resume is not None else None
    if resume is not None:
        spec = resume_spec(resume, given)
    elif given is not None:
        spec = given
    elif named_folder is not None:
        raise ConfigError(_("{folder} is a search folder: add --resume to continue it, or --report to summarize it").format(
            folder=named_folder))
    else:
        raise ConfigError(_("name a search spec (.toml) or a search folder"))
    control = RunControl()
    restore = _stop_signals(control, _("stopping the search after this step"))
    # Translators: how a search trial ended.
    outcomes = {"finished": _("finished"), "pruned": _("pruned"), "stopped": _("stopped"), "failed": _("failed")}

    class Board:
        in_trial = False

        def on_event(self, event: Event) -> None:
            if isinstance(event, LogMessage) and not self.in_trial:  # the search's own notes (a trial's are its run's)
                print(event.text, flush=True)
            if isinstance(event, TrialStarted | TrialFinished):
                self.in_trial = isinstance(event, TrialStarted)
            if isinstance(event, TrialStarted):
                shown = ", ".join(f"{k}={v}" for k, v in event.params)
                # Translators: {params} lists the trial's settings (train.lr=0.003, ...).
                print(_("trial {trial}/{trials}: {params}").format(trial=event.trial, trials=event.trials, params=shown), flush=True)
            elif isinstance(event, TrialFinished):
                value = "" if event.value is None else f"{spec.metric} {event.value:.4f}"
                # Translators: {outcome} is finished, pruned, stopped or failed; {value} "<metric> <value>" or nothing;
                # {error} the error or nothing.
                line = _("  -> {outcome} {value} after {steps} steps, {seconds:.0f} s {error}").format(
                    outcome=outcomes.get(event.status, event.status), value=value, steps=event.steps,
                    seconds=event.seconds, error=event.error,
                )
                print(line.rstrip(), flush=True)
            elif isinstance(event, TrialPruned) and not args.quiet:
                print(f"  {describe(event)}", flush=True)

    try:
        board, folder = run_search(spec, [Board()], control, out=resume, resume=resume is not None)
    finally:
        restore()
    if spec.minimize:
        # Translators: {metric} is the metric's name (valid_loss, accuracy), kept as is.
        heading = _("leaderboard ({metric}, lower is better), saved in {folder}:")
    else:
        # Translators: {metric} is the metric's name (valid_loss, accuracy), kept as is.
        heading = _("leaderboard ({metric}, higher is better), saved in {folder}:")
    print("\n" + heading.format(metric=spec.metric, folder=folder))
    for rank, r in enumerate(board, start=1):
        value = "-" if r.value is None else f"{r.value:.4f}"
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.params.items())
        # Translators: a row of the leaderboard; keep the widths ({rank:>3}, {value:>10}, {outcome:9}) so the columns line up.
        print(_("{rank:>3}. trial {trial}: {value:>10}  {outcome:9} {params}").format(
            rank=rank, trial=r.trial, value=value, outcome=outcomes.get(r.status, r.status), params=shown
        ))
    if control.stop_requested:
        # Translators: the command is written as is.
        print("\n" + _("stopped; continue with: studio search --resume {folder}").format(folder=folder))
        return EXIT_STOPPED
    if args.promote and board and board[0].value is not None:
        config = promote(spec, board[0], [f"train.steps={args.promote}"])
        print("\n" + _("promoting trial {trial} to a full run of {steps} steps").format(trial=board[0].trial, steps=args.promote))
        return _run_trainer(Trainer(config), args.quiet)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from studio.core.i18n import _
    from studio.core.runs.export import export_run

    path = export_run(args.run, Path(args.out), label=args.checkpoint, merge_lora=args.merge_lora, as_zip=args.zip,
                      overwrite=args.force)
    print(_("exported to {path}").format(path=path))
    return EXIT_OK


# ---- listings ----------------------------------------------------------------------------------


def cmd_presets(args: argparse.Namespace) -> int:
    import tomllib

    from studio.core.resources import presets_dir

    for path in sorted(presets_dir().glob("*.toml")):
        first = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        arch = data.get("model", {}).get("arch", "gpt")
        print(f"{path.stem:28} {arch:8} {first}")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from studio.core.i18n import _
    from studio.core.runs.index import RunIndex
    from studio.core.training.run_dir import RunDir, run_roots

    index = RunIndex()
    index.refresh()
    rows = []
    for r in index.list(order_by="started", descending=False):
        # Translators: put after a run's step in "studio runs": its best validation loss.
        best = _("  best {loss:.4f}").format(loss=r.best_valid_loss) if isinstance(r.best_valid_loss, float) else ""
        if best and r.best_valid_bpc is not None:
            # Translators: put after the best validation loss in "studio runs": the same loss in bits per character.
            best += _(" ({bpc:.3f} bits/char)").format(bpc=r.best_valid_bpc)
        # A run that did not finish resumes from its last checkpoint, which may be behind its last logged step.
        resume_at = RunDir(Path(r.path)).read_info().get("last_checkpoint_step")
        resumes = ""
        if r.status in ("interrupted", "stopped", "failed") and isinstance(resume_at, int):
            resumes = _("  (resumes at {step})").format(step=resume_at) if resume_at != r.step else _("  (resumable)")
        # Translators: a row of "studio runs"; {status} is the run's status (finished, stopped, ...); keep the widths
        # ({name:40}, {arch:8}, {status:13}, {step:>6}) so the columns line up; {best} and {resumes} may be empty.
        rows.append(_("{name:40} {arch:8} {status:13} step {step:>6}{best}{resumes}").format(
            name=Path(r.path).name, arch=r.arch, status=_(r.status), step=r.step, best=best, resumes=resumes
        ))
    print("\n".join(rows) if rows else _("no runs yet in {folders}").format(folders=", ".join(str(p) for p in run_roots())))
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from studio.core.data.datasets import DATASETS, DEMO_TITLES, dataset_folder, is_available, resolve_dataset
    from studio.core.i18n import _

    if args.action == "download":
        if not args.name:
            # Translators: "studio datasets download tinyshakespeare" is a command, kept as is.
            raise ValueError(_("name the dataset to download, e.g. studio datasets download tinyshakespeare"))
        files = resolve_dataset(args.name, _download_progress())
        count = len(files.train) + len(files.valid) + len(files.test)
        print("\n" + _("{name}: ready in {folder} ({count} files)").format(name=args.name, folder=dataset_folder(args.name), count=count))
        return EXIT_OK
    for name, title in DEMO_TITLES.items():
        # Translators: a dataset's state in "studio datasets": ready, downloaded or not yet.
        print(f"{name:16} {_('ready'):12} {_(title)}")
    for name, spec in DATASETS.items():
        state = _("downloaded") if is_available(name) else _("not yet")
        print(f"{name:16} {state:12} {_(spec.title)}: {_(spec.description)} [{_(spec.license)}]")
    return EXIT_OK


def _download_progress() -> Callable[[str, int, int], None]:
    from studio.core.callbacks import describe_stage

    last = [0.0]

    def show(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.2 or done == total:
            last[0] = now
            pct = f"{100 * done / total:5.1f}%" if total else f"{done / 1e6:.1f} MB"
            print(f"\r{describe_stage(stage)}: {pct}", end="", file=sys.stderr, flush=True)

    return show


def cmd_inspect(args: argparse.Namespace) -> int:
    import tempfile

    from studio.core.callbacks import split_name
    from studio.core.config import DataConfig, TokenizerConfig
    from studio.core.data.prepare import prepare_corpus
    from studio.core.i18n import _

    data = DataConfig(paths=list(args.paths), format=args.format, column=args.column, json_field=args.field)
    tok = TokenizerConfig(kind=args.tokenizer, language=args.language, vocab_size=args.vocab_size)
    for issue in data.validate() + tok.validate():
        raise ValueError(str(issue))
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare_corpus(data, tok, cache_root=Path(tmp))
        stats = prepared.stats
        for f in stats.files:
            skipped = _(", {count} bad rows skipped").format(count=f["skipped_rows"]) if f["skipped_rows"] else ""
            if f["format"] == "text":
                # Translators: {format} is text, csv, tsv or jsonl; {encoding} the encoding and {reason} why it was chosen;
                # {skipped} is ", N bad rows skipped" or nothing.
                line = _("{path}: {format}, {encoding} ({reason}), {units:,} lines{skipped}")
            else:
                # Translators: {format} is text, csv, tsv or jsonl; {encoding} the encoding and {reason} why it was chosen;
                # {skipped} is ", N bad rows skipped" or nothing.
                line = _("{path}: {format}, {encoding} ({reason}), {units:,} rows{skipped}")
            print(line.format(path=f["path"], format=f["format"], encoding=_(f["encoding"]), reason=f["encoding_reason"],
                              units=f["units"], skipped=skipped))
        total = stats.total
        print(_("tokenizer: {tokenizer}").format(tokenizer=stats.tokenizer))
        print(_("characters {characters:,}  lines/rows {records:,}  tokens {tokens:,}  unknown-token rate {unknown:.2%}").format(
            characters=total.characters, records=total.records, tokens=total.tokens, unknown=total.unknown_rate
        ))
        for split, st in stats.splits.items():
            if st.tokens:
                # Translators: {split:5} is train, valid or test, padded to five characters.
                print(_("  {split:5}: {tokens:,} tokens in {records:,} lines/rows, unknown {unknown:.2%}").format(
                    split=split_name(split), tokens=st.tokens, records=st.records, unknown=st.unknown_rate
                ))
        edges, counts = total.histogram(bins=10)
        print(_("tokens per line/row:"))
        peak = max(1, int(counts.max()))
        for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True):
            print(f"  {lo:7.0f}-{hi:<7.0f} {'#' * int(40 * n / peak):40} {n:,}")
    return EXIT_OK


if __name__ == "__main__":
    # As the ``studio`` command does: the training process the window starts this way writes its
    # log in the window's language, which reaches it through STUDIO_LANG.
    from studio.core import i18n

    i18n.set_language(i18n.choose_language())
    sys.exit(main())
