"""Moving items through `datasets` stages: one flat row per item (the record as JSON)."""

from __future__ import annotations

import json
from typing import Any

from gavel.curate.sources import Item
from gavel.judge.records import JudgeRecord, record_to_dict


def item_to_row(item: Item) -> dict[str, Any]:
    return {"id": item.id, "source": item.source, "task": item.record.task.value,
            "record": json.dumps(record_to_dict(item.record), ensure_ascii=False),
            "critique": item.critique, "critique_author": item.critique_author, "file": item.file, "row": item.row}


def row_to_item(row: dict[str, Any]) -> Item:
    return Item(id=row["id"], source=row["source"], record=JudgeRecord.model_validate(json.loads(row["record"])),
                critique=row.get("critique"), critique_author=row.get("critique_author"), file=row.get("file", ""),
                row=row.get("row", 0))


def to_dataset(items: list[Item]):
    import datasets

    features = datasets.Features({name: datasets.Value("int64" if name == "row" else "string")
                                  for name in ("id", "source", "task", "record", "critique", "critique_author",
                                               "file", "row")})
    return datasets.Dataset.from_list([item_to_row(i) for i in items], features=features)


def from_dataset(dataset) -> list[Item]:
    return [row_to_item(row) for row in dataset]
