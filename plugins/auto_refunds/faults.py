"""Crash points: where the kill tests stop a real run with SIGKILL.

A crash point does nothing unless ``AUTO_REFUNDS_CRASH_AT`` names it, which only the tests set.
They sit at the moments that matter for money (mid-load, mid-model, mid-write of the refund
file, between the file and its manifest, between the manifest and the ledger, mid-upload of a
delivery) and inside the worklist snapshot's write, which must leave the previous snapshot in force.
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("AUTO_REFUNDS_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
