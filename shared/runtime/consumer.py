"""The durable pull-consumer loop every service uses.

A batch is fetched, decoded and handed to the service's handler; only after the handler returns (its
effects committed to DuckDB and its outputs published) are the messages acked. Errors come in two kinds:

* permanent: the payload cannot be decoded or violates a contract, or the handler raises
  ``PermanentError``: the message is copied to ``dlq.v1.<service>`` with the reason and terminated at once;
* transient: any other exception: the message is retried in place with backoff (so per-subject order is
  kept) and dead-lettered as ``exhausted`` after ``max_deliver`` attempts. A message that crashed the whole
  process is redelivered by the server and dead-lettered once its delivery count passes ``max_deliver``,
  unless the service says it had handled it (``ConsumerSpec.handled``): then only its acks were lost, to a
  process killed after its commit and before its acks each time, and it is acked. It costs only itself:
  once a dead process's unacked batch has come back twice it is handled one message at a time, each one
  recorded in the ``CONSUMER_ATTEMPTS`` KV bucket before it starts, so the message the process keeps dying
  on is dead-lettered after ``max_deliver`` starts, and the others of its batch are handled however often
  outside kills made the server deliver them (``ConsumerLoop._one_by_one``). A consumer made anew over such
  messages, whose delivery counts start from 1 again, has its first batch handled that way too
  (``ConsumerLoop(suspect=True)``).

Order survives restarts (``Recovery``): a process that crashed (or stopped) mid-batch leaves messages
delivered but unacked, which the server redelivers only after ``ack_wait``, while newer ones would be
handed out at once. So a starting loop that finds unacked messages holds the newer ones until those have
come back, then handles everything in stream order. (``max_ack_pending`` equals the batch size, which keeps
this bounded.) Handlers must still be idempotent (a processed-events table), because an ack can be lost
after the handler committed.

Fetching (``Puller``) is tuned for latency without giving up batching: a ``no_wait`` pull request takes
every message available right now (up to the batch size, one round trip); only when there is none does
the loop wait, with a pull request for a single message that returns the moment one arrives. So a backlog
is worked off in full batches, and a trickle is handled message by message as it comes: batches grow by
themselves when the handler is slower than the arrivals. (nats-py's ``fetch`` instead waits, when nothing
is available, until the whole batch has arrived or the timeout has passed: up to ``fetch_timeout`` of
latency per hop at a steady rate.) Every message is still acked explicitly, after the handler returned.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import nats.errors
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from shared.contracts import DeadLetter, Event
from shared.contracts.subjects import dlq_subject
from shared.runtime import metrics
from shared.runtime.bus import Bus

log = structlog.get_logger()

MAX_DLQ_PAYLOAD = 64 * 1024
#: A predecessor's unacked messages delivered this often came back from a process that died with them in hand
#: and from one that died recovering them: they are then handled one by one, so a message that kills the
#: process is found and dead-lettered alone. Not at the first recovery: a process stopped or killed from
#: outside (a deploy, the OOM killer) leaves a batch that is fine, and handling it whole is fast, whereas a
#: batch handled one by one stays unacked longer, and a message that is merely pending across many outside
#: kills would pass ``max_deliver`` without ever having been run.
SUSPECT_DELIVERIES = 3


class PermanentError(Exception):
    """Raised by a handler for a message that can never succeed (contract or business-rule violation)."""


@dataclass(frozen=True)
class Delivery:
    """One decoded message handed to a handler."""

    event: Any
    subject: str
    stream_sequence: int
    deliveries: int
    msg: Msg = field(repr=False, compare=False)


Handler = Callable[[Sequence[Delivery]], Awaitable[None]]
Decoder = Callable[[str, bytes], Any]


def _on_its_subject(subject: str, event: Event) -> Event:
    """An event must arrive on the subject it names (``event.subject()``): a bar of TCS published on
    ``md.v1.bar.INFY`` is refused, so a subject's permissions and filters mean what they say."""
    own = getattr(event, "subject", None)
    if callable(own):
        expected = own()
        if isinstance(expected, str) and expected != subject:
            raise ValueError(f"event for {expected} arrived on {subject}")
    return event


def decoder_for(types: type[Event] | Mapping[str, type[Event]]) -> Decoder:
    """A decoder for one contract, or for several chosen by subject prefix. Decoding fails (the message goes
    to the DLQ) when the payload is not the contract or names another subject than the one it came on."""
    if isinstance(types, type):
        single = types
        return lambda subject, data: _on_its_subject(subject, single.from_json(data))
    table = dict(types)

    def decode(subject: str, data: bytes) -> Any:
        for prefix, model in table.items():
            if subject.startswith(prefix):
                return _on_its_subject(subject, model.from_json(data))
        raise ValueError(f"no contract for subject {subject}")

    return decode


@dataclass
class ConsumerSpec:
    """What one durable consumer reads and who handles it."""

    name: str
    stream: str
    subjects: Sequence[str]
    decode: Decoder
    handler: Handler
    batch: int = 100
    max_deliver: int = 5
    ack_wait: float = 30.0
    backoff: Sequence[float] = (0.05, 0.2, 0.5, 1.0, 2.0)
    fetch_timeout: float = 0.5
    #: which of these events (their indexes) the service has already handled (its processed-events
    #: table): a message past ``max_deliver`` that was handled is acked instead of dead-lettered
    handled: Callable[[Sequence[Event]], set[int]] | None = None


@dataclass
class ConsumerStats:
    processed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    lag: int = 0


def consumer_config(spec: ConsumerSpec) -> ConsumerConfig:
    subjects = list(spec.subjects)
    return ConsumerConfig(
        durable_name=spec.name,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=spec.ack_wait,
        max_deliver=-1,  # the loop dead-letters after spec.max_deliver; the server never drops silently
        max_ack_pending=spec.batch,
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=subjects if len(subjects) > 1 else None,
    )


async def ensure_consumer(bus: Bus, spec: ConsumerSpec) -> None:
    try:
        await bus.js.add_consumer(spec.stream, consumer_config(spec))
    except BadRequestError as exc:
        log.warning("consumer.exists_with_other_config", consumer=spec.name, error=str(exc))


#: Status codes that end a pull request: 404 no messages (``no_wait``), 408 request expired, 409 refused
#: (consumer deleted, max waiting/ack pending exceeded, leadership change, ...). 100 is a heartbeat.
_STATUS = "Status"


class Puller:
    """Pull requests for one durable consumer on a private inbox (see the module doc for the policy).

    Messages that arrive after a request was given up (a reply slower than the local timeout) stay in the
    inbox and come first in the next ``fetch``, in delivery order; nothing is dropped here, and whatever a
    process never acks is redelivered by the server after ``ack_wait``.
    """

    def __init__(self, nc: NATS, js_prefix: str, stream: str, durable: str) -> None:
        self.nc = nc
        self.next_subject = f"{js_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.inbox = nc.new_inbox()
        self._ready: deque[Msg] = deque()
        self._statuses = 0  # status replies seen (each ends one pull request)
        self._arrived = asyncio.Event()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.inbox, cb=self._on_msg)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_msg(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status:
            if status != "100":
                self._statuses += 1
        elif msg.reply:  # a JetStream message (it carries its ack subject)
            self._ready.append(msg)
        self._arrived.set()

    def _take(self, batch: int) -> list[Msg]:
        ready = self._ready
        n = min(batch, len(ready))
        return [ready.popleft() for _ in range(n)]

    async def _wait(self, deadline: float) -> bool:
        """Wait for the next arrival (message or status) until ``deadline``; False on timeout."""
        self._arrived.clear()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            await asyncio.wait_for(self._arrived.wait(), remaining)
        except TimeoutError:
            return False
        return True

    async def _request(self, body: dict[str, Any]) -> None:
        await self.nc.publish(self.next_subject, json.dumps(body).encode(), reply=self.inbox)

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to ``batch`` messages: all available at once, else the first to arrive within ``timeout``.
        Raises ``TimeoutError`` when none came."""
        if self._ready:
            return self._take(batch)
        deadline = time.monotonic() + timeout
        # 1. everything available now: the server answers with up to ``batch`` messages, then a 404/408
        statuses = self._statuses
        await self._request({"batch": batch, "no_wait": True})
        while len(self._ready) < batch and self._statuses == statuses:
            if not await self._wait(deadline):
                break
        if self._ready:
            return self._take(batch)
        # 2. nothing available: one message, as soon as it comes (expiring on the server before we give up)
        expires = int((deadline - time.monotonic()) * 1e9) - 50_000_000
        if expires <= 0:
            raise TimeoutError("pull request timed out")
        statuses = self._statuses
        await self._request({"batch": 1, "expires": expires})
        while not self._ready and self._statuses == statuses:
            if not await self._wait(deadline):
                break
        if self._ready:
            return self._take(batch)
        raise TimeoutError("pull request timed out")


@dataclass
class Recovery:
    """Messages a previous process left delivered and unacked: ``pending`` of them, none after stream
    sequence ``upto``. Until they are redelivered (after ``ack_wait``), newer messages are held, so the loop
    handles the lot in stream order; after ``deadline`` it goes on with what it has (logged)."""

    upto: int
    pending: int
    deadline: float
    old: dict[int, Msg] = field(default_factory=dict)
    new: dict[int, Msg] = field(default_factory=dict)
    touched: float = 0.0  # when the held newer messages last told the server they are in progress

    def add(self, msgs: Sequence[Msg]) -> None:
        for msg in msgs:
            seq = int(msg.metadata.sequence.stream)
            (self.old if seq <= self.upto else self.new)[seq] = msg  # a second delivery replaces the first

    def complete(self, now: float) -> bool:
        return len(self.old) >= self.pending or now > self.deadline


class ConsumerLoop:
    """Runs one ``ConsumerSpec`` until ``stop`` is set.

    ``suspect``: the consumer was made anew over what a dead predecessor left unacked (a strategy consumer
    rewound to its ack floor), so the server's delivery counts of those messages start from 1 again and
    cannot tell the loop that they were in hand when a process died. The first batch is then handled one
    by one (``_one_by_one``), as a third delivery would be: a message that kills the process is started
    ``max_deliver`` times and dead-lettered alone, instead of killing whole batches first.
    """

    def __init__(self, bus: Bus, spec: ConsumerSpec, stop: asyncio.Event, suspect: bool = False) -> None:
        self.bus = bus
        self.spec = spec
        self.stop = stop
        self.suspect = suspect
        self.stats = ConsumerStats()
        self._labels = {"service": bus.service, "consumer": spec.name}
        self._handled: set[int] = set()  # stream sequences handled during recovery (see ``_fresh``)

    async def _recovery(self) -> Recovery | None:
        try:
            info = await self.bus.js.consumer_info(self.spec.stream, self.spec.name)
        except Exception as exc:  # the loop works without it; only the order after a crash is at stake
            log.warning("consumer.info_failed", consumer=self.spec.name, error=repr(exc))
            return None
        pending = int(info.num_ack_pending or 0)
        if not pending or info.delivered is None:
            return None
        upto = int(info.delivered.stream_seq or 0)
        log.info("consumer.recovering", consumer=self.spec.name, unacked=pending, upto=upto)
        return Recovery(upto, pending, time.monotonic() + 2 * self.spec.ack_wait + 5)

    async def _recovered(self, recovery: Recovery, msgs: Sequence[Msg]) -> bool:
        """Hold ``msgs`` in ``recovery``; once it is complete handle everything in order. True when done."""
        recovery.add(msgs)
        now = time.monotonic()
        if not recovery.complete(now):
            if now - recovery.touched > self.spec.ack_wait / 3:  # held ones must not be redelivered meanwhile
                recovery.touched = now
                for waiting in recovery.new.values():
                    try:
                        await waiting.in_progress()
                    except Exception as exc:  # a late redelivery is deduplicated below anyway
                        log.debug("consumer.in_progress_failed", consumer=self.spec.name, error=repr(exc))
            return False
        if len(recovery.old) < recovery.pending:
            log.warning(
                "consumer.recovery_incomplete",
                consumer=self.spec.name,
                expected=recovery.pending,
                got=len(recovery.old),
            )
        self._handled = set(recovery.old) | set(recovery.new)
        log.info(
            "consumer.recovered", consumer=self.spec.name, messages=len(recovery.old) + len(recovery.new)
        )
        # the predecessor's messages first and on their own (most were handled before the crash, only their
        # acks were lost): acked before anything new is decided, so a second crash does not count them again
        old = [recovery.old[s] for s in sorted(recovery.old)]
        if old and (int(old[0].metadata.num_delivered) >= SUSPECT_DELIVERIES or await self._interrupted()):
            await self._one_by_one(old)
            old = []
        for part in (old, [recovery.new[s] for s in sorted(recovery.new)]):
            for start in range(0, len(part), self.spec.batch):
                if self.stop.is_set():
                    return True  # unacked: handled in order by the next start
                await self.process(part[start : start + self.spec.batch])
        return True

    async def _interrupted(self) -> bool:
        """A predecessor died handling messages one by one (a strategy consumer rewound since counts its
        deliveries from 1 again, so only this tells)."""
        try:
            kv = await self.bus.attempts()
            return await _read_attempts(kv, attempts_key(self.bus.service, self.spec.name)) is not None
        except Exception as exc:  # only the choice of one by one is at stake
            log.warning("consumer.attempts_unreadable", consumer=self.spec.name, error=repr(exc))
            return False

    async def _one_by_one(self, msgs: Sequence[Msg]) -> None:
        """The unacked messages of a predecessor that died recovering them, one at a time in stream order,
        each ack at the server before the next one runs. Before each one starts, the ``CONSUMER_ATTEMPTS``
        bucket records it and how often it was started, which survives the process: a message started
        ``max_deliver`` times, with the process dying each time, is dead-lettered; one that was only pending
        while the process was killed (from outside, or by the message before it) is handled, however often
        the server delivered it."""
        key = attempts_key(self.bus.service, self.spec.name)
        kv: KeyValue | None = None
        last: tuple[int, int] | None = None
        try:
            kv = await self.bus.attempts()
            last = await _read_attempts(kv, key)
        except Exception as exc:  # handled one by one all the same, only without counting the starts
            log.warning("consumer.attempts_unreadable", consumer=self.spec.name, error=repr(exc))
        for msg in msgs:
            if self.stop.is_set():
                return  # unacked: handled in order by the next start
            delivery = await self._decode(msg)
            if delivery is None:
                continue
            seq = delivery.stream_sequence
            handled = self.spec.handled
            if (
                delivery.deliveries > self.spec.max_deliver
                and handled is not None
                and handled([delivery.event])
            ):
                await msg.ack()  # handled before a crash; only its acks were lost
                log.info("consumer.redelivered_handled", consumer=self.spec.name, seq=seq)
                continue
            started = last[1] if last is not None and last[0] == seq else 0
            if started >= self.spec.max_deliver:
                reason = f"started {started} times; the process died each time while handling it"
                await self.dead_letter(msg, "exhausted", reason)
                await self.bus.nc.flush()
                continue
            last = (seq, started + 1)
            if kv is not None:
                try:
                    await kv.put(key, json.dumps({"seq": seq, "started": started + 1}).encode())
                except Exception as exc:
                    log.warning("consumer.attempts_unwritable", consumer=self.spec.name, error=repr(exc))
            await self._retry_single(replace(delivery, deliveries=started + 1), None)
            await self.bus.nc.flush()
        if kv is not None:
            try:
                await kv.delete(key)
            except Exception as exc:  # a stale entry only counts starts of a message long acked; it ages out
                log.warning("consumer.attempts_unwritable", consumer=self.spec.name, error=repr(exc))

    async def run(self) -> None:
        await ensure_consumer(self.bus, self.spec)
        recovery = await self._recovery()
        prefix = getattr(self.bus.js, "_prefix", "$JS.API")
        sub = Puller(self.bus.nc, prefix, self.spec.stream, self.spec.name)
        await sub.start()
        log.info("consumer.started", consumer=self.spec.name, subjects=list(self.spec.subjects))
        try:
            while not self.stop.is_set():
                try:
                    msgs = await sub.fetch(self.spec.batch, timeout=self.spec.fetch_timeout)
                except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either under load
                    if recovery is not None and await self._recovered(recovery, []):
                        recovery = None
                    continue
                except (nats.errors.ConnectionClosedError, nats.errors.NoServersError):
                    if self.bus.nc.is_closed:
                        return
                    await asyncio.sleep(0.5)
                    continue
                except Exception as exc:  # server restarting, consumer recreated: keep the loop alive
                    log.warning("consumer.fetch_failed", consumer=self.spec.name, error=repr(exc))
                    await asyncio.sleep(0.5)
                    continue
                if recovery is not None:
                    if await self._recovered(recovery, msgs):
                        recovery = None
                    continue
                if self._handled:
                    msgs = await self._fresh(msgs)
                if msgs:
                    self._record_lag(msgs[-1])
                    if self.suspect:
                        self.suspect = False
                        await self._one_by_one(msgs)
                        continue
                    await self.process(msgs)
        finally:
            try:
                await sub.stop()
            except Exception as exc:
                log.debug("consumer.unsubscribe_failed", error=repr(exc))

    async def _fresh(self, msgs: Sequence[Msg]) -> list[Msg]:
        """``msgs`` without second deliveries of what recovery already handled (those are acked again)."""
        fresh = []
        for msg in msgs:
            if int(msg.metadata.sequence.stream) in self._handled:
                await msg.ack()
            else:
                fresh.append(msg)
        if fresh and int(fresh[0].metadata.sequence.stream) > max(self._handled):
            self._handled = set()  # past everything recovery held: nothing more to filter
        return fresh

    def _record_lag(self, msg: Msg) -> None:
        try:
            self.stats.lag = int(msg.metadata.num_pending)
        except Exception:
            return
        metrics.LAG.labels(**self._labels).set(self.stats.lag)

    async def process(self, msgs: Sequence[Msg]) -> None:
        good: list[Delivery] = []
        for msg in msgs:
            delivery = await self._decode(msg)
            if delivery is not None:
                good.append(delivery)
        good = await self._drop_exhausted(good)
        if not good:
            return
        started = time.perf_counter()
        try:
            await self.spec.handler(good)
        except Exception as exc:
            if len(good) == 1:
                await self._retry_single(good[0], exc)
            else:
                log.info("consumer.batch_failed_isolating", consumer=self.spec.name, error=repr(exc))
                for delivery in good:
                    if self.stop.is_set():
                        return  # unacked: handled in order after the restart (``Recovery``)
                    await self._retry_single(delivery, None)
            return
        metrics.LATENCY.labels(**self._labels).observe(time.perf_counter() - started)
        for delivery in good:
            await delivery.msg.ack()
        self._processed(len(good))

    async def _drop_exhausted(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Deliveries past ``max_deliver`` leave the batch: acked if the service had already handled them
        (``spec.handled``: only their acks were lost, to a process killed before acking, again and again),
        else dead-lettered as ``exhausted`` (they keep killing the process)."""
        over = [d for d in deliveries if d.deliveries > self.spec.max_deliver]
        if not over:
            return deliveries
        done = self.spec.handled([d.event for d in over]) if self.spec.handled is not None else set()
        for index, delivery in enumerate(over):
            if index in done:
                await delivery.msg.ack()
                log.info(
                    "consumer.redelivered_handled", consumer=self.spec.name, seq=delivery.stream_sequence
                )
            else:
                reason = f"delivered {delivery.deliveries} times without being acked"
                await self.dead_letter(delivery.msg, "exhausted", reason)
        return [d for d in deliveries if d.deliveries <= self.spec.max_deliver]

    async def _decode(self, msg: Msg) -> Delivery | None:
        meta = msg.metadata
        deliveries = int(meta.num_delivered)
        try:
            event = self.spec.decode(msg.subject, msg.data)
        except (ValidationError, ValueError, UnicodeDecodeError) as exc:
            await self.dead_letter(msg, "permanent", f"cannot decode: {_short(exc)}")
            return None
        return Delivery(event, msg.subject, int(meta.sequence.stream), deliveries, msg)

    async def _retry_single(self, delivery: Delivery, first_error: Exception | None) -> None:
        attempt = delivery.deliveries
        error = first_error
        while True:
            if error is None:
                started = time.perf_counter()
                try:
                    await self.spec.handler([delivery])
                except Exception as exc:
                    error = exc
                else:
                    metrics.LATENCY.labels(**self._labels).observe(time.perf_counter() - started)
                    await delivery.msg.ack()
                    self._processed(1)
                    return
            self.stats.failed += 1
            metrics.FAILED.labels(**self._labels).inc()
            if isinstance(error, PermanentError):
                await self.dead_letter(delivery.msg, "permanent", _short(error))
                return
            log.warning(
                "consumer.handler_failed", consumer=self.spec.name, attempt=attempt, error=repr(error)
            )
            if attempt >= self.spec.max_deliver:
                await self.dead_letter(delivery.msg, "exhausted", f"{attempt} attempts: {_short(error)}")
                return
            if self.stop.is_set():
                return
            await delivery.msg.in_progress()
            await asyncio.sleep(self.spec.backoff[min(attempt - 1, len(self.spec.backoff) - 1)])
            attempt += 1
            error = None

    def _processed(self, n: int) -> None:
        self.stats.processed += n
        metrics.PROCESSED.labels(**self._labels).inc(n)

    async def dead_letter(self, msg: Msg, kind: str, reason: str) -> None:
        """Copy ``msg`` to ``dlq.v1.<service>`` with ``reason``, then terminate it."""
        meta = msg.metadata
        payload = msg.data or b""
        letter = DeadLetter.build(
            producer=self.bus.service,
            key=f"{self.spec.name}|{meta.stream}|{meta.sequence.stream}",
            occurred_at=datetime.now(UTC),
            service=self.bus.service,
            consumer=self.spec.name,
            subject=msg.subject[:512],
            stream_sequence=int(meta.sequence.stream),
            deliveries=int(meta.num_delivered),
            kind=kind,
            reason=reason[:2000],
            payload_b64=base64.b64encode(payload[:MAX_DLQ_PAYLOAD]).decode(),
            payload_truncated=len(payload) > MAX_DLQ_PAYLOAD,
        )
        await self.bus.publish(letter, dlq_subject(self.bus.service))
        await msg.term()
        self.stats.dead_lettered += 1
        metrics.DEAD_LETTERED.labels(**self._labels).inc()
        log.warning("consumer.dead_lettered", consumer=self.spec.name, kind=kind, reason=reason[:300])


async def run_consumer(bus: Bus, spec: ConsumerSpec, stop: asyncio.Event) -> ConsumerStats:
    loop = ConsumerLoop(bus, spec, stop)
    await loop.run()
    return loop.stats


def attempts_key(service: str, consumer: str) -> str:
    """``<service>.<consumer>`` as a KV key (characters other than ``A-Za-z0-9-_`` as ``=XX``)."""
    return f"{service}." + re.sub(
        r"[^A-Za-z0-9_-]", lambda m: "".join(f"={b:02X}" for b in m[0].encode()), consumer
    )


async def _read_attempts(kv: KeyValue, key: str) -> tuple[int, int] | None:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None
    try:
        doc = json.loads(entry.value or b"")
        return int(doc["seq"]), int(doc["started"])
    except (ValueError, KeyError, TypeError):
        return None


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return f"{type(exc).__name__}: {text}"[:1000]
