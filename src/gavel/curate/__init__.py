"""`gavel curate`: public judge data -> preference pairs for DPO training (see docs/curate.md)."""
