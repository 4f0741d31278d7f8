"""One thin click command per stage: parse options and params, call pipeline and cache."""
