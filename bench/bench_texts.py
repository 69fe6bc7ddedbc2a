"""Writes the benchmark texts: the first 256 MovieLens items with a plot overview, as
"title. overview", one per line.  Usage: bench_texts.py ITEMS_TEXT_CSV OUT_TXT"""
import csv
import sys

rows = [r for r in csv.DictReader(open(sys.argv[1], newline="")) if r["overview"]][:256]
with open(sys.argv[2], "w") as f:
    for r in rows:
        f.write(f"{r['title']}. {r['overview']}".replace("\n", " ") + "\n")
