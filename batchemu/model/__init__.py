"""The job model, pure: rules over stored documents that take a store transaction and do no other I/O."""
