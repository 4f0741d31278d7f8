"""The Zarr v3 store: schema, codecs, sharded resumable writes, provenance, reading, Dataset."""
