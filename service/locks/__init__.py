"""Study locks: an admin freezes a study (and every record in it) while its results are being
published; every write to it is refused with 409 until it is unlocked. Both are audited."""
