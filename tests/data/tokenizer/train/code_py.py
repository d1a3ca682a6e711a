#!/usr/bin/env python3
"""inventory.py: a tiny inventory with reports, for tokenizer training."""
import argparse
import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Item:
    sku: str
    name: str
    price: float
    quantity: int = 0
    tags: list = field(default_factory=list)

    def value(self) -> float:
        return round(self.price * self.quantity, 2)


class Inventory:
    def __init__(self):
        self.items = {}
        self.history = []

    def add(self, item: Item) -> None:
        if item.sku in self.items:
            raise ValueError(f"duplicate SKU: {item.sku!r}")
        self.items[item.sku] = item
        self.history.append(("add", item.sku, item.quantity))

    def restock(self, sku: str, amount: int) -> int:
        if amount <= 0:
            raise ValueError("amount must be positive")
        item = self.items[sku]
        item.quantity += amount
        self.history.append(("restock", sku, amount))
        return item.quantity

    def sell(self, sku: str, amount: int = 1) -> float:
        item = self.items.get(sku)
        if item is None:
            raise KeyError(sku)
        if item.quantity < amount:
            raise RuntimeError(f"only {item.quantity} left of {item.name}")
        item.quantity -= amount
        self.history.append(("sell", sku, amount))
        return item.price * amount

    def by_tag(self):
        groups = defaultdict(list)
        for item in self.items.values():
            for tag in item.tags or ["untagged"]:
                groups[tag].append(item)
        return dict(groups)

    def total_value(self) -> float:
        return sum(i.value() for i in self.items.values())

    def to_json(self) -> str:
        return json.dumps(
            {sku: {"name": i.name, "price": i.price, "quantity": i.quantity} for sku, i in self.items.items()},
            indent=2,
            sort_keys=True,
        )


def load_csv(path: str) -> Inventory:
    inv = Inventory()
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            tags = [t.strip() for t in row.get("tags", "").split(";") if t.strip()]
            inv.add(Item(row["sku"], row["name"], float(row["price"]), int(row["quantity"]), tags))
    return inv


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="inventory report")
    parser.add_argument("csv", help="input file")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    inv = load_csv(args.csv)
    if args.json:
        print(inv.to_json())
        return 0
    for tag, items in sorted(inv.by_tag().items()):
        print(f"[{tag}]")
        for item in sorted(items, key=lambda i: i.sku):
            print(f"  {item.sku:<10} {item.name:<24} {item.quantity:>5} x {item.price:>8.2f}")
    print(f"total: {inv.total_value():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
