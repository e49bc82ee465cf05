"""Failures that need a person, as opposed to failures a retry can fix.

A task retries what time can heal: the warehouse busy past the lock timeout, an I/O error, a lost
worker. A failure below cannot heal by itself: retrying it would only delay the person who must act,
so the task fails at once (``runtime.call`` turns it into Airflow's ``AirflowFailException``) with a
message that says what to do.
"""

from __future__ import annotations


class NeedsAPerson(RuntimeError):
    """A failure no retry can fix; its message names the file or keys and what to do."""

    action = "fix the cause named above, then clear the failed task"

    def __str__(self) -> str:
        return f"{super().__str__()}. What to do: {self.action}."
