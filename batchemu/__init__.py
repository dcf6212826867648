"""batchemu: a local emulator of AWS Batch that runs jobs as real Docker containers."""

__version__ = "0.1.0"
