"""Developer entry points: the offline demo, the Dagster UI on demo data, the benchmark."""
