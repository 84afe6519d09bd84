"""Batch scoring of Parquet and CSV files (local folders or object stores) with Arrow record
batches, in this process or across a Dask cluster. Needs pyarrow (``modelport[batch]``)."""
