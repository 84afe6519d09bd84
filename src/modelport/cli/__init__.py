"""The `modelport` command line (Typer + rich)."""
