"""``bastion streams list|apply|consumers|remove-consumer``: what the JetStream streams hold, how long they
keep it, and who reads them.

Each connects as the NATS ``operator`` user (the ``$BASTION_HOME/secrets/operator.password`` that `bastion up`
writes, or ``BASTION_NATS_USER``/``_PASSWORD``), the only user allowed to change a stream. The age each
stream should keep is ``BASTION_STREAM_MAX_AGE`` over the defaults of ``shared.runtime.retention``: services
give it to the streams they create, and ``apply`` gives it to streams that exist already. ``consumers``
lists every durable consumer with what it has not read yet and whether a service is pulling from it now;
``remove-consumer`` removes one that no service reads any more (a symbol or service taken out of the
configuration), whose unread messages would otherwise count as a backlog for ever.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo, RawStreamMsg, StreamInfo
from nats.js.errors import APIError, NotFoundError
from rich.console import Console

from bastion import tables
from shared.contracts.subjects import STREAMS
from shared.runtime.bus import NatsUnreachable, connect_once
from shared.runtime.retention import age_differs, describe_age
from shared.runtime.settings import RuntimeSettings

app = typer.Typer(
    help="JetStream streams: their size, how long they keep messages, and their consumers.",
    no_args_is_help=True,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class StreamsError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StreamView:
    name: str
    info: StreamInfo | None  # None: not created yet
    oldest: datetime | None
    wanted: float  # seconds, 0 = forever
    unread: int = 0  # messages its consumers have not acked yet, all consumers together
    oldest_unread: datetime | None = None  # the oldest of them

    def at_risk(self, now: datetime) -> bool:
        """A consumer is behind by more than half the age: its messages would soon be removed unread."""
        return _at_risk(self.max_age, self.oldest_unread, now)

    @property
    def max_age(self) -> float:
        return float(self.info.config.max_age or 0.0) if self.info else 0.0

    @property
    def differs(self) -> bool:
        return self.info is not None and age_differs(self.max_age, self.wanted)

    @property
    def shortens(self) -> bool:
        """Applying the wanted age removes messages this stream keeps now (or may keep later)."""
        return self.differs and (self.max_age == 0.0 or 0.0 < self.wanted < self.max_age)


def _at_risk(max_age: float, oldest_unread: datetime | None, now: datetime) -> bool:
    """Unread for more than half of a stream's age (0: kept forever, never at risk)."""
    return bool(max_age and oldest_unread and (now - oldest_unread).total_seconds() > max_age / 2)


def _confirmed(question: str, why: str) -> bool:
    """``question`` answered yes in a terminal; elsewhere refused, saying ``why`` (``--yes`` skips asking)."""
    if not sys.stdin.isatty():
        raise StreamsError(f"{why}: run it in a terminal or pass --yes")
    if typer.confirm(question, default=False):
        return True
    out.print("nothing changed")
    return False


def _not_operator(settings: RuntimeSettings, doing: str) -> StreamsError:
    """The server refused ``doing`` to this NATS user: only the operator may."""
    return StreamsError(
        f"NATS user {settings.nats_user or '(anonymous)'} may not {doing}: run it as the operator user "
        "(found by itself beside `bastion up`; elsewhere set BASTION_NATS_USER=operator and "
        "BASTION_NATS_PASSWORD_FILE)"
    )


def _settings() -> RuntimeSettings:
    return RuntimeSettings.from_env("cli", user="operator")


async def _connect(settings: RuntimeSettings, errors: list[str] | None = None) -> NATS:
    """As ``settings`` say; ``errors`` collects what the server reports later (a permissions violation)."""
    try:
        return await connect_once(settings, errors)
    except NatsUnreachable as exc:
        raise StreamsError(str(exc)) from None


async def _first_from(
    js: JetStreamContext, name: str, seq: int, subject: str | None = None
) -> RawStreamMsg | None:
    """The first message of stream ``name`` at ``seq`` or after (on ``subject``, if given)."""
    try:
        return await js.get_msg(name, seq=seq, subject=subject, next=True)
    except (NotFoundError, NatsError):
        return None


async def _oldest(js: JetStreamContext, info: StreamInfo) -> datetime | None:
    if not info.state.messages:
        return None
    msg = await _first_from(js, info.config.name or "", info.state.first_seq)
    return msg.time if msg else None


async def _consumers(js: JetStreamContext, name: str) -> list[ConsumerInfo]:
    """Every consumer of stream ``name``, page by page."""
    consumers: list[ConsumerInfo] = []
    while True:
        page = await js.consumers_info(name, offset=len(consumers) or None)
        consumers += page
        if len(page) < 256:  # the server's page size
            break
    return consumers


async def _oldest_unread(js: JetStreamContext, name: str, c: ConsumerInfo) -> RawStreamMsg | None:
    """The first message after the consumer's ack floor that it reads (any message, for a consumer with
    several filters: so never later than its own)."""
    return await _first_from(js, name, _floor(c) + 1, c.config.filter_subject if c.config else None)


async def _unread(js: JetStreamContext, name: str) -> tuple[int, datetime | None]:
    """How many messages of stream ``name`` its consumers still have to ack, and when the oldest came.
    Sequences grow with time, so consumers are looked at from the lowest ack floor up, and one whose floor
    is past the oldest unread message found so far is not looked up at all."""
    behind = [c for c in await _consumers(js, name) if _behind(c)]
    unread = sum(_behind(c) for c in behind)
    oldest: RawStreamMsg | None = None
    for c in sorted(behind, key=_floor):
        if oldest is not None and _floor(c) + 1 >= (oldest.seq or 0):
            break
        found = await _oldest_unread(js, name, c)
        if found is not None and (oldest is None or (found.seq or 0) < (oldest.seq or 0)):
            oldest = found
    return unread, oldest.time if oldest else None


def _floor(c: ConsumerInfo) -> int:
    return int(c.ack_floor.stream_seq or 0) if c.ack_floor else 0


def _behind(c: ConsumerInfo) -> int:
    """Messages the consumer has not acked: not delivered yet, or delivered and not acked."""
    return int(c.num_pending or 0) + int(c.num_ack_pending or 0)


@dataclass(frozen=True)
class ConsumerView:
    stream: str
    info: ConsumerInfo
    max_age: float  # the stream's, seconds, 0 = forever
    oldest_unread: datetime | None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def unread(self) -> int:
        return _behind(self.info)

    def reading(self, now: datetime) -> bool:
        """A service is pulling from it now (``_busy``)."""
        return _busy(self.info, now)

    @property
    def last_delivered(self) -> datetime | None:
        return self.info.delivered.last_active if self.info.delivered else None

    @property
    def subjects(self) -> list[str]:
        config = self.info.config
        if config is None:
            return []
        return list(config.filter_subjects or ([config.filter_subject] if config.filter_subject else []))

    def at_risk(self, now: datetime) -> bool:
        return _at_risk(self.max_age, self.oldest_unread, now)


async def read_consumers(nc: NATS, names: Sequence[str]) -> list[ConsumerView]:
    """Every durable consumer of the streams ``names`` that exist, by stream and name."""
    js = nc.jetstream(timeout=5)
    views = []
    for name in names:
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            continue
        except APIError as exc:
            raise StreamsError(f"cannot read stream {name}: {exc.description or exc}", 1) from None
        age = float(info.config.max_age or 0.0)
        for c in sorted(await _consumers(js, name), key=lambda c: c.name):
            found = await _oldest_unread(js, name, c) if _behind(c) else None
            views.append(ConsumerView(name, c, age, found.time if found else None))
    return views


async def read_streams(nc: NATS, wanted: Mapping[str, float]) -> list[StreamView]:
    """Every stream of ``STREAMS``, created or not, with the age ``wanted`` of it."""
    js = nc.jetstream(timeout=5)
    views = []
    for name in STREAMS:
        try:
            info: StreamInfo | None = await js.stream_info(name)
        except NotFoundError:
            info = None
        except APIError as exc:
            raise StreamsError(f"cannot read stream {name}: {exc.description or exc}", 1) from None
        if info is None:
            views.append(StreamView(name, None, None, wanted.get(name, 0.0)))
            continue
        unread, oldest_unread = await _unread(js, name)
        views.append(
            StreamView(name, info, await _oldest(js, info), wanted.get(name, 0.0), unread, oldest_unread)
        )
    return views


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _when(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if t else "-"


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except StreamsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.code) from None
    except (TimeoutError, NatsError) as exc:
        err.print(f"[red]error:[/red] NATS did not answer: {exc or type(exc).__name__}")
        raise typer.Exit(1) from None


async def _list() -> list[StreamView]:
    settings = _settings()
    nc = await _connect(settings)
    try:
        return await read_streams(nc, settings.stream_max_age)
    finally:
        await nc.close()


@app.command("list")
def list_streams() -> None:
    """Each stream's messages, size, oldest message, age limit (now, and as configured) and unread backlog."""
    views: list[StreamView] = _run(_list())
    now = datetime.now(UTC)
    table = tables.table(
        "stream", "messages", "size", "oldest (UTC)", "keeps", "configured", "unread", "oldest unread"
    )
    for v in views:
        if v.info is None:
            table.add_row(v.name, "-", "-", "-", "not created", describe_age(v.wanted), "-", "-")
            continue
        mark = " [yellow](differs)[/yellow]" if v.differs else ""
        risk = " [red](at risk)[/red]" if v.at_risk(now) else ""
        table.add_row(
            v.name,
            f"{v.info.state.messages:,}",
            _size(v.info.state.bytes),
            _when(v.oldest),
            describe_age(v.max_age),
            describe_age(v.wanted) + mark,
            f"{v.unread:,}",
            _when(v.oldest_unread) + risk,
        )
    tables.show(out, table)
    if any(v.differs for v in views):
        out.print("Ages differ from the configured ones: `bastion streams apply` sets them.")
    for v in views:
        if v.at_risk(now):
            out.print(
                f"{v.name}: a consumer is behind by more than half of {describe_age(v.max_age)}; its oldest "
                "unread messages will be removed unread unless its service catches up (or the age is "
                "raised). `bastion streams consumers` shows which"
            )


async def _apply(dry_run: bool, yes: bool) -> int:
    settings = _settings()
    errors: list[str] = []
    nc = await _connect(settings, errors)
    try:
        views = await read_streams(nc, settings.stream_max_age)
        changes = [v for v in views if v.differs]
        for v in views:
            if v.info is None:
                age = describe_age(v.wanted)
                out.print(f"{v.name}: not created yet; the services that use it create it keeping {age}")
            elif not v.differs:
                out.print(f"{v.name}: keeps {describe_age(v.max_age)}, as configured")
        now = datetime.now(UTC)
        for v in changes:
            line = f"{v.name}: {describe_age(v.max_age)} -> {describe_age(v.wanted)}"
            if v.wanted:
                cutoff = now - timedelta(seconds=v.wanted)
                dropped = v.oldest is not None and v.oldest < cutoff
                line += f"; messages stored before {_when(cutoff)} UTC are removed" + (
                    f" (the oldest is from {_when(v.oldest)} UTC)" if dropped else " (none is that old)"
                )
            out.print(line)
        if not changes:
            out.print("nothing to change")
            return 0
        if dry_run:
            out.print("dry run: nothing changed")
            return 0
        shortens = any(v.shortens for v in changes)
        if shortens and not yes and not _confirmed("Apply these ages?", "shortening an age removes messages"):
            return 1
        js = nc.jetstream(timeout=5)
        failed = 0
        for v in changes:
            assert v.info is not None
            config = v.info.config
            config.max_age = v.wanted
            try:
                await js.update_stream(config)
            except APIError as exc:
                failed += 1
                err.print(f"[red]error:[/red] {v.name} not changed: {exc.description or exc}")
                continue
            except (TimeoutError, NatsError) as exc:
                if any("permissions violation" in e.lower() for e in errors):
                    raise _not_operator(settings, "change streams") from None
                raise StreamsError(
                    f"NATS did not answer the change of {v.name}: {exc or type(exc).__name__}", 1
                ) from None
            out.print(f"{v.name}: now keeps {describe_age(v.wanted)}")
        return 1 if failed else 0
    finally:
        await nc.close()


@app.command()
def apply(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before shortening an age")] = False,
) -> None:
    """Give existing streams the ages of BASTION_STREAM_MAX_AGE (and its defaults); asks before shortening."""
    code: int = _run(_apply(dry_run, yes))
    if code:
        raise typer.Exit(code)


async def _list_consumers(stream: str | None) -> list[ConsumerView]:
    settings = _settings()
    nc = await _connect(settings)
    try:
        return await read_consumers(nc, [stream] if stream else list(STREAMS))
    finally:
        await nc.close()


def _stream_name(stream: str | None) -> str | None:
    if stream is None:
        return None
    name = stream.upper()
    if name not in STREAMS:
        raise StreamsError(f"no stream {stream!r}: Bastion's streams are {', '.join(STREAMS)}")
    return name


@app.command("consumers")
def list_consumers(
    stream: Annotated[
        str | None, typer.Argument(help="Only this stream's consumers (e.g. MARKETDATA)")
    ] = None,
) -> None:
    """Every durable consumer: unread messages and the oldest, last delivery, whether a service reads it."""

    async def read() -> list[ConsumerView]:
        return await _list_consumers(_stream_name(stream))

    views: list[ConsumerView] = _run(read())
    if not views:
        out.print("no consumers" + (f" on {stream.upper()}" if stream else ""))
        return
    now = datetime.now(UTC)
    table = tables.table(
        "stream", "consumer", "subjects", "unread", "oldest unread", "last delivered", "reading"
    )
    for v in views:
        risk = " [red](at risk)[/red]" if v.at_risk(now) else ""
        table.add_row(
            v.stream,
            v.name,
            ", ".join(v.subjects) or "(all)",
            f"{v.unread:,}",
            _when(v.oldest_unread) + risk,
            _when(v.last_delivered),
            "yes" if v.reading(now) else "no",
        )
    tables.show(out, table)
    idle = [v for v in views if v.unread and not v.reading(now)]
    if idle:
        out.print(
            "Not read by any running service now, with messages unread: "
            + ", ".join(f"{v.stream}/{v.name}" for v in idle)
            + ". A consumer of a symbol or service no longer configured can go: "
            "`bastion streams remove-consumer STREAM CONSUMER`."
        )


RECENT = 60.0  # seconds: a consumer that had a message delivered this recently is in use
SAMPLES = 3  # looks at a consumer, ``SAMPLE_GAP`` apart: an idle service's pull requests have short gaps
SAMPLE_GAP = 0.3


def _busy(info: ConsumerInfo, now: datetime) -> bool:
    """A service is pulling from the consumer now (a waiting pull request: an idle service) or had a message
    delivered within ``RECENT`` seconds, or twice its ack wait (a busy one, between its pull requests)."""
    if info.num_waiting:
        return True
    last = info.delivered.last_active if info.delivered else None
    recent = max(RECENT, 2 * float(info.config.ack_wait or 0.0) if info.config else 0.0)
    return last is not None and (now - last).total_seconds() < recent


async def _in_use(js: JetStreamContext, stream: str, info: ConsumerInfo) -> bool:
    for i in range(SAMPLES):
        if i:
            await asyncio.sleep(SAMPLE_GAP)
            info = await js.consumer_info(stream, info.name)
        if _busy(info, datetime.now(UTC)):
            return True
    return False


async def _remove(stream: str, name: str, yes: bool) -> int:
    settings = _settings()
    errors: list[str] = []
    nc = await _connect(settings, errors)
    try:
        js = nc.jetstream(timeout=5)
        try:
            info = await js.consumer_info(stream, name)
        except NotFoundError:
            raise StreamsError(
                f"no consumer {name!r} on stream {stream} (`bastion streams consumers {stream}` lists them)"
            ) from None
        except APIError as exc:
            raise StreamsError(f"cannot read consumer {name}: {exc.description or exc}", 1) from None
        if await _in_use(js, stream, info):
            raise StreamsError(
                f"{stream}/{name} is being read: a service is pulling from it now. Stop that service (or "
                "take it out of the configuration and restart it) first"
            )
        unread = _behind(info)
        out.print(
            f"{stream}/{name}: {unread:,} messages unread; they stay in the stream. A service that reads "
            f"{name} again creates it anew and starts from the stream's oldest message (what it handled "
            "before it skips)"
        )
        if not yes and not _confirmed(f"Remove {stream}/{name}?", "removing a consumer cannot be undone"):
            return 1
        try:
            await js.delete_consumer(stream, name)
        except NotFoundError:
            out.print(f"{stream}/{name}: already gone")
            return 0
        except APIError as exc:
            raise StreamsError(f"{stream}/{name} not removed: {exc.description or exc}", 1) from None
        except (TimeoutError, NatsError) as exc:
            if any("permissions violation" in e.lower() for e in errors):
                raise _not_operator(settings, "remove consumers") from None
            raise StreamsError(f"NATS did not answer: {exc or type(exc).__name__}", 1) from None
        out.print(f"{stream}/{name}: removed")
        return 0
    finally:
        await nc.close()


@app.command("remove-consumer")
def remove_consumer(
    stream: Annotated[str, typer.Argument(help="The consumer's stream, e.g. MARKETDATA")],
    consumer: Annotated[
        str, typer.Argument(help="The consumer's name, as `bastion streams consumers` lists it")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before removing")] = False,
) -> None:
    """Remove a durable consumer no service reads any more; refused while a service pulls from it."""

    async def remove() -> int:
        name = _stream_name(stream)
        assert name is not None
        return await _remove(name, consumer, yes)

    code: int = _run(remove())
    if code:
        raise typer.Exit(code)
