"""Access-review campaigns: open one on a snapshot, read the decisions back, verify the
removals against later snapshots, and write the evidence an auditor asks for."""
