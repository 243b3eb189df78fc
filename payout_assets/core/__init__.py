"""The project's pure logic, apart from Dagster: condition ids, exact payouts, statuses, bounds and redaction."""
