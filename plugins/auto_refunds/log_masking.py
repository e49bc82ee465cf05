"""Card numbers masked in what a process logs and prints (CONTRACT 7): the logging filter,
the structlog processor and the masking stdout/stderr, installed by ``install_log_filter``.

What a card number is, and how it is masked, is ``card_numbers``.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any
from urllib.parse import unquote_plus

from auto_refunds.card_numbers import mask, mask_value


class CardNumberFilter(logging.Filter):
    """Masks the card numbers of a record's message, and of the exception text it will print.

    The record's message is formatted once (``msg % args``), masked, and kept with no args; a
    record with an exception gets its traceback text masked into ``exc_text``, which the stdlib
    ``Formatter`` prints instead of formatting the exception again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        masked = mask(message)
        if masked != record.msg or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def mask_event_dict(logger: Any, method_name: str, event_dict: dict) -> dict:
    """A structlog processor: masks every string in the event, its exception included.

    An exception already rendered (Airflow's JSON logs turn it into a list of dicts before the
    renderer) is masked as data; one still held as ``exc_info`` is rendered here to masked text,
    which structlog's console renderer prints as it is.
    """
    exc_info = event_dict.pop("exc_info", None)
    if exc_info and "exception" not in event_dict:
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if exc_info[0] is not None:
            event_dict["exception"] = "".join(traceback.format_exception(*exc_info))
    return mask_value(event_dict)


class MaskedStream:
    """A text stream (stdout, stderr) that masks the card numbers of each line it passes on.

    Text is held until its line ends (or the stream is flushed), so that a number printed in
    pieces is still seen whole. Everything but writing goes to the wrapped stream.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        complete, newline, self._pending = self._pending.rpartition("\n")
        if newline:
            self._stream.write(mask(complete + newline))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(mask(self._pending))
            self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def mask_standard_streams() -> None:
    """Masks what this process prints to stdout and stderr from Python. A C library writing to
    file descriptor 1 or 2 itself is not covered (DuckDB reports errors as exceptions)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, MaskedStream):
            setattr(sys, name, MaskedStream(stream))


_FILTER = CardNumberFilter()


def _insert_before_renderer(processors: list | tuple) -> list:
    processors = list(processors)
    if mask_event_dict not in processors:
        processors.insert(max(len(processors) - 1, 0), mask_event_dict)
    return processors


def install_log_filter() -> None:
    """Masks card numbers in everything this process logs. Idempotent; call it when a task starts.

    Airflow 3.3 runs a task in a child process that sends its logs as JSON to the supervisor
    (``airflow.sdk.log.configure_logging(json_output=True, sending_to_supervisor=True)``):

    - structlog events (the task runner's own, e.g. ``Task failed with exception`` with the
      exception rendered to a dict, which is where a DuckDB error quoting a line ends up) go
      through structlog's configured processors: ``mask_event_dict`` is inserted before the
      final renderer, in place, so loggers already created see it too;
    - stdlib records (ours, and libraries') reach the root logger's handler, whose
      ``structlog.stdlib.ProcessorFormatter`` renders them and their exception: the same
      processor is inserted before its renderer, and the handler also gets ``CardNumberFilter``
      (which alone covers plain ``logging.Formatter`` handlers, e.g. the CLI's).

    - what Python prints to stdout and stderr (``print``, warnings), which the supervisor logs
      as it reads it, goes through ``MaskedStream``.

    Not covered: a C library writing to file descriptor 1 or 2 itself; and a reconfiguration of
    logging after this call (call it again).
    """
    import structlog  # comes with Airflow; imported here to keep this module light

    mask_standard_streams()
    processors = structlog.get_config()["processors"]
    if mask_event_dict not in processors:
        processors.insert(max(len(processors) - 1, 0), mask_event_dict)
    for logger in (logging.getLogger(), logging.getLogger("airflow.task")):
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
            if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter):
                handler.formatter.processors = _insert_before_renderer(handler.formatter.processors)


def mask_address(text: str) -> str:
    """A request's path or query as an access log writes it, with its card numbers masked.

    An address carries a number grouped by spaces as ``+`` or ``%20``, which ``mask`` alone would
    not see: the text is decoded to look, and written decoded only when it held one."""
    decoded = unquote_plus(text)
    masked = mask(decoded)
    return text if masked == decoded else masked


def mask_access_event(logger: Any, method_name: str, event_dict: dict) -> dict:
    """A structlog processor for access log events (Airflow's ``http.access``: path and query
    as fields)."""
    for name in ("path", "query"):
        if isinstance(event_dict.get(name), str):
            event_dict[name] = mask_address(event_dict[name])
    return event_dict


class AccessLogFilter(logging.Filter):
    """Masks the card numbers of uvicorn's access log records, whose args are a tuple the
    access formatter unpacks (so ``CardNumberFilter``'s formatting in place would break it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                mask_address(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


_ACCESS_FILTER = AccessLogFilter()


def install_access_log_masking() -> None:
    """Masks card numbers in what the API server logs, its access log included. Idempotent.

    Airflow 3.3's API server logs each request through its own middleware, as a structlog event
    (``http.access``, the path and query as fields) and turns uvicorn's access log off; uvicorn's
    ``uvicorn.access`` logger is filtered too, for a server run with its own log config. Besides,
    everything ``install_log_filter`` covers."""
    import structlog

    install_log_filter()
    processors = structlog.get_config()["processors"]
    if mask_access_event not in processors:
        processors.insert(max(len(processors) - 1, 0), mask_access_event)
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if (
            isinstance(formatter, structlog.stdlib.ProcessorFormatter)
            and mask_access_event not in formatter.processors
        ):
            chain = list(formatter.processors)
            chain.insert(max(len(chain) - 1, 0), mask_access_event)
            formatter.processors = chain
    access = logging.getLogger("uvicorn.access")
    if _ACCESS_FILTER not in access.filters:
        access.addFilter(_ACCESS_FILTER)
