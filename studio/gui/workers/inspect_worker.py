"""The Inspect page's computations off the GUI thread: loading a checkpoint, and every view of it
on the person's text (``studio.core.inference.insight``). One request at a time; a newer one
replaces a waiting one (moving the time scrubber fast asks for many)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from studio.core.decoding.options import DecodingSettings
from studio.core.errors import StudioError
from studio.gui.workers.thread_job import LatestOnlyJob


@dataclass(frozen=True)
class InspectRequest:
    run: Path | None  # the run whose layer statistics are read (None: a lone checkpoint)
    checkpoint: Path
    text: str
    settings: DecodingSettings
    top_k: int
    token: int
    align_to: Any = None  # the previous embedding map's coordinates (a tensor), so an animation does not flip


@dataclass
class InspectResult:
    label: str = ""
    views: list[str] = field(default_factory=list)  # what this model can show
    reading: Any = None  # the text as the model reads it (its tokens)
    predictions: Any = None
    attention: Any = None  # list[AttentionMap]
    recurrent: Any = None
    embedding_map: Any = None
    embeddings: Any = None  # the embedding table [V, d] (a tensor), for nearest neighbours on the page
    layers: Any = None  # LayerSeries
    errors: dict[str, str] = field(default_factory=dict)  # view -> why it cannot be shown


class InsightCache:
    """Loaded checkpoints (a ModelInsight each), shared by the page's workers; a few at a time,
    since the scrubber moves through a run's checkpoints one after another."""

    LIMIT = 4

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> Any:
        from studio.core.inference.insight import ModelInsight
        from studio.core.training.checkpoint_commit import COMMIT_FILE

        # ``checkpoints/last`` is one folder for ever newer weights: the commit record's time tells them apart.
        try:
            stamp = (path / COMMIT_FILE).stat().st_mtime_ns
        except OSError:
            stamp = 0
        key = f"{path}@{stamp}"
        with self._lock:
            if key in self._items:
                self._items[key] = self._items.pop(key)  # the most recent last
                return self._items[key]
        insight = ModelInsight.load(path)
        with self._lock:
            self._items[key] = insight
            while len(self._items) > self.LIMIT:
                self._items.pop(next(iter(self._items)))
        return insight

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class InspectWorker(QObject):
    done = Signal(object, str, int)  # the InspectResult (or None), an error, the request's token

    def __init__(self, request: InspectRequest, cache: InsightCache):
        super().__init__()
        self.request = request
        self.cache = cache

    @Slot()
    def run(self) -> None:
        r = self.request
        try:
            insight = self.cache.get(r.checkpoint)
            result = InspectResult(label=insight.label, views=list(insight.views))
            self._fill(insight, result)
        except StudioError as e:
            self.done.emit(None, str(e), r.token)
            return
        except Exception as e:  # noqa: BLE001 - shown on the page, never a crash
            self.done.emit(None, f"{type(e).__name__}: {e}", r.token)
            return
        self.done.emit(result, "", r.token)

    def _fill(self, insight: Any, result: InspectResult) -> None:
        from studio.core.inference.insight_timeline import layer_series

        r = self.request

        def attempt(view: str, compute: Any) -> Any:
            try:
                return compute()
            except StudioError as e:
                result.errors[view] = str(e)
            except Exception as e:  # noqa: BLE001 - one view that fails leaves the others
                result.errors[view] = f"{type(e).__name__}: {e}"
            return None

        reading = attempt("predictions", lambda: insight.read(r.text)) if r.text.strip() else None
        result.reading = reading
        if reading is not None and "predictions" in result.views:
            result.predictions = attempt("predictions", lambda: insight.predictions(reading, r.settings, r.top_k))
        if reading is not None:
            if "attention" in result.views:
                result.attention = attempt("attention", lambda: insight.attention(reading))
            if "recurrent" in result.views:
                result.recurrent = attempt("recurrent", lambda: insight.recurrent(reading))
        if "embeddings" in result.views:
            result.embedding_map = attempt("embeddings", lambda: insight.embedding_map(r.align_to))
            result.embeddings = attempt("embeddings", lambda: insight.embeddings().detach().float().cpu())
        if r.run is not None:
            result.layers = attempt("layers", lambda: layer_series(r.run))


class InspectJob(LatestOnlyJob):
    """The latest inspection asked for; ``token`` tells a late answer to an earlier request."""

    done = Signal(object, str, int)

    def __init__(self, parent: QObject | None = None):
        super().__init__("inspectThread", parent)
        self.cache = InsightCache()

    def inspect(self, request: InspectRequest) -> None:
        self._request(lambda: InspectWorker(request, self.cache))
