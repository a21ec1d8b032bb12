"""CloudWatch metrics through Powertools' embedded metric format (EMF): one JSON line on stdout per
signal, which Lambda's log delivery turns into a metric. No API call and no IAM permission.

Each signal is written at once (`single_metric`), not buffered until the handler returns: the
handlers that emit them need no `log_metrics` decorator, and a signal survives the invocation
failing right after it (an auth failure raises on). The namespace is POWERTOOLS_METRICS_NAMESPACE
(the template's MetricsNamespace); the one dimension every signal carries is `service`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from t2v.signals import Signal

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import MetricUnit


class EmfSignals:
    def __init__(self, *, namespace: str | None = None, service: str | None = None) -> None:
        self._namespace = namespace  # None: Powertools reads POWERTOOLS_METRICS_NAMESPACE
        self._service = service or os.environ.get("POWERTOOLS_SERVICE_NAME") or "t2v"

    # Imported in the calls: the metrics module is paid for only by a container that emits a signal.
    def count(self, signal: Signal, value: float = 1, *, status: str | None = None) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self._emit(signal, MetricUnit.Count, value, status)

    def percent(self, signal: Signal, value: float) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self._emit(signal, MetricUnit.Percent, value, None)

    def _emit(self, signal: Signal, unit: MetricUnit, value: float, status: str | None) -> None:
        from aws_lambda_powertools.metrics import single_metric

        with single_metric(
            name=signal.value,
            unit=unit,
            value=value,
            namespace=self._namespace,
            default_dimensions={"service": self._service},
        ) as metric:
            if status is not None:
                metric.add_dimension(name="status", value=status)
