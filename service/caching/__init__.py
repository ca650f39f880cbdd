"""Analysis answers cached on the version of the data they were computed from: an ETag for
conditional requests (304) and a bounded in-process store for repeats."""
