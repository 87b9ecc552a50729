"""``make chaos``: the fault suite. Writes through both clusters' REST APIs under scheduled faults, then proves
that every committed event was applied exactly once everywhere it was due (see README, "Fault suite")."""
