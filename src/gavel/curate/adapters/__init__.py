"""Importing this package registers every curation source."""

from gavel.curate.adapters import arena, autoj, hub, mrgsm8k, prmbench, shepherd, summacoz, vicuna80  # noqa: F401
