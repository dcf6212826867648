"""The AWS wire format, driven by botocore's service models; knows nothing about Batch semantics."""
