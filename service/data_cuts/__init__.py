"""Data cuts: the registry's data as it stood at a moment, frozen — the canonical export of the
studies it covers, compressed, with its SHA-256 and the audit chain's head at the cut — so that
figures written against it can be traced to exactly that data."""
