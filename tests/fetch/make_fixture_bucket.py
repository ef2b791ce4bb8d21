#!/usr/bin/env python3
"""Writes a PG-19-shaped fixture bucket (metadata.csv + {split}/{id}.txt of
generated text) for `make demo`: make_fixture_bucket.py ROOT [TRAIN VALID TEST]."""
import os
import sys

from fetchlib import make_bucket


def main():
    root = sys.argv[1]
    n_train, n_valid, n_test = (int(x) for x in (sys.argv[2:5] or (40, 4, 6)))
    books = {"train": [1000 + i for i in range(n_train)],
             "validation": [5000 + i for i in range(n_valid)],
             "test": [7000 + i for i in range(n_test)]}
    objs = make_bucket(root, books=books, sizes=(20000, 80000))
    print(f"fixture bucket: {len(objs) - 1} books, {sum(len(v) for v in objs.values())} bytes in {root}")


if __name__ == "__main__":
    main()
