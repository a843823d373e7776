"""File names of a `gavel curate` output folder (what curate writes and train and recipe read)."""

#: Written first: the folder is a gavel curate output, which gavel may resume and write into.
MARKER = ".gavel-curate"
#: Written last: the mix is finished.
READY = "READY"
PAIRS = "pairs.jsonl"
DATASET = "dataset"
