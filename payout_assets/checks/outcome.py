"""What a failing check tells the operator at a terminal, not only in the UI."""

from collections.abc import Iterable, Iterator

import dagster as dg

MAX_LOGGED_CHARS = 400


def reason(result: dg.AssetCheckResult) -> str:
    """The check's `problem` where it names one; else its plain numbers and words."""
    metadata = result.metadata or {}
    problem = metadata.get("problem")
    if problem is not None:
        return str(getattr(problem, "value", problem))[:MAX_LOGGED_CHARS]
    plain = []
    for label, value in metadata.items():
        value = getattr(value, "value", value)
        if isinstance(value, (int, float, str)) and "\n" not in str(value):
            plain.append(f"{label}={value}")
    return ", ".join(plain)[:MAX_LOGGED_CHARS]


def logged(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, results: Iterable[dg.AssetCheckResult]) -> Iterator[dg.AssetCheckResult]:
    """Each result, unchanged; a failing one is also logged (ERROR or WARN) with its reason, so
    `dagster asset materialize` shows why a run stopped, not only that a check failed."""
    for result in results:
        if not result.passed:
            severity = result.severity or dg.AssetCheckSeverity.ERROR
            log = context.log.error if severity == dg.AssetCheckSeverity.ERROR else context.log.warning
            log(f"check {result.check_name} failed ({severity.value}): {reason(result)}")
        yield result
