"""Python's cyclic garbage collection, run on the GUI thread only, while the window lives.

Left automatic, a collection runs in whichever thread happens to allocate past the threshold.
When that was a worker's thread (the Fine-tune page's coverage check) and the garbage held Qt
objects, Qt destroyed them there: ~QObject locked a connection mutex and waited for the GIL,
while the GUI thread, holding the GIL, was deleting a menu and waited for the same mutex. The
test suite hung on that deadlock (py-spy showed both stacks). With automatic collection off and
this timer collecting on the GUI thread, no other thread ever runs a collection. The check costs
a few microseconds; a young-generation collection well under a millisecond.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

CHECK_MS = 500


class MainThreadGarbageCollector(QObject):
    """Turns automatic collection off and collects from a GUI-thread timer instead; ``stop``
    turns automatic collection back on (the window closes; other code may carry on)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.collections = 0  # collections this object ran (tests check that it runs)
        self._was_enabled = gc.isenabled()
        self._thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.setObjectName("garbageCollectionTimer")
        self.timer.setInterval(CHECK_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    def check(self) -> None:
        """Collect the oldest generation whose count is past its threshold, as Python would."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                self.collections += 1
                return

    def freeze(self) -> None:
        """Once the window is built: what exists now (some 330,000 objects: Qt wrappers, plots,
        PyTorch's modules) is left out of every later collection. An oldest-generation collection
        over all of it held the GUI thread 430 ms during training (benchmarks/gui_responsiveness.py:
        max lateness 427.8 ms; 67.2 ms with this). No collection runs first: that would be the same
        stall, once; what start-up left as garbage is collected when the window closes."""
        gc.freeze()

    def stop(self) -> None:
        self.timer.stop()
        gc.unfreeze()  # the window's objects go back to the collector, which the close collects
        if self._was_enabled:
            gc.enable()
