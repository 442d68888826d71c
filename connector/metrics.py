"""A small Prometheus registry and text exposition (format 0.0.4).

Only what the connector exports: counters and gauges with labels, and histograms with fixed
buckets. Written here instead of pulling in prometheus-client because it is a page of code and the
service needs no multiprocess support or default collectors.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: LabelValues, extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{_escape(extra[1])}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Metric(ABC):
    kind = ""

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        self.name = name
        self.help_text = help_text
        self.label_names = tuple(label_names)

    def _key(self, labels: Sequence[str]) -> LabelValues:
        if len(labels) != len(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {tuple(labels)}")
        return tuple(labels)

    @abstractmethod
    def samples(self) -> Iterable[str]:
        """The exposition lines of this metric's samples (each kind writes its own)."""

    def render(self) -> str:
        head = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} {self.kind}"]
        return "\n".join([*head, *self.samples()])


class Counter(_Metric):
    """A value that only goes up."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self._values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterable[str]:
        for key, value in sorted(self._values.items()):
            yield f"{self.name}{_labels(self.label_names, key)} {_number(value)}"


class Gauge(_Metric):
    """A value that is set, or computed at scrape time by ``collect``."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        collect: Callable[[], dict[LabelValues, float]] | None = None,
    ) -> None:
        super().__init__(name, help_text, label_names)
        self._values: dict[LabelValues, float] = {}
        self._collect = collect

    def set(self, value: float, *labels: str) -> None:
        self._values[self._key(labels)] = value

    def value(self, *labels: str) -> float:
        return self._current().get(self._key(labels), 0.0)

    def _current(self) -> dict[LabelValues, float]:
        return self._collect() if self._collect is not None else self._values

    def samples(self) -> Iterable[str]:
        for key, value in sorted(self._current().items()):
            yield f"{self.name}{_labels(self.label_names, key)} {_number(value)}"


class Histogram(_Metric):
    """Observations counted into cumulative buckets (upper bounds in the metric's unit)."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * len(self.buckets)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self._counts[i] += 1

    def samples(self) -> Iterable[str]:
        for bound, count in zip(self.buckets, self._counts, strict=True):
            yield f'{self.name}_bucket{{le="{_number(bound)}"}} {count}'
        yield f'{self.name}_bucket{{le="+Inf"}} {self.count}'
        yield f"{self.name}_sum {_number(self.total)}"
        yield f"{self.name}_count {self.count}"


M = TypeVar("M", bound=_Metric)


class Registry:
    """The metrics one connector exports."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def register(self, metric: M) -> M:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        """The text exposition served on ``/metrics``."""
        return "\n".join(m.render() for m in self._metrics.values()) + "\n"


LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ConnectorMetrics:
    """The connector's metrics (``/metrics``); the two gauges are read from the service when scraped."""

    def __init__(self, accounts_by_state: Callable[[], dict[LabelValues, float]],
                 pending: Callable[[], dict[LabelValues, float]]) -> None:
        self.registry = Registry()
        r = self.registry
        self.accounts = r.register(Gauge("keeper_connector_accounts", "Held accounts by supervisor state",
                                         ("state",), collect=accounts_by_state))
        self.reconnects = r.register(Counter("keeper_connector_reconnects_total",
                                             "Reconnects by close reason", ("reason",)))
        self.snapshot_latency = r.register(Histogram(
            "keeper_connector_snapshot_publish_seconds",
            "From the first unsnapshotted change to Pub/Sub accepting the snapshot", LATENCY_BUCKETS_S))
        self.pending = r.register(Gauge("keeper_connector_pending_snapshots",
                                        "Snapshots not yet accepted by Pub/Sub", collect=pending))
        self.renewals = r.register(Counter("keeper_connector_lease_renewals_total",
                                           "Lease renewals by result", ("result",)))
        self.claims = r.register(Counter("keeper_connector_claims_total", "Accounts claimed, by how their "
                                         "state was found", ("source",)))
        self.messages = r.register(Counter("keeper_connector_messages_total",
                                           "Incoming messages by outcome", ("outcome",)))
