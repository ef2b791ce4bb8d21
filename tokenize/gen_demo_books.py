#!/usr/bin/env python3
"""Writes a few synthetic PG-19-style books for the offline demo when the
fetch stage has not provided $PG19_WORK/pg19: CRLF text, a few thousand words
each, a little non-Latin script, an emoji or two, deterministic (fixed seed).

usage: gen_demo_books.py OUTDIR   (writes OUTDIR/{train,validation,test}/<id>.txt
                                   and OUTDIR/metadata.csv)
"""
import os
import random
import sys

WORDS = ("the of and to a in that he was it his is with as I had for you at be not on "
         "her by which she this all from they but so were have said one my him me we "
         "there no their an what would been when if could man into old time little "
         "upon more some them out very then only any these like made great other may "
         "over such now well before see who our must after should good day came never "
         "long first down way much where every house night things life yet eyes hand "
         "heart mind light nothing world young thought father mother children water "
         "voice words ship river garden evening morning letter window journey").split()
PUNCT = [",", ",", ".", ";", "!", "?", ":", ""] + [""] * 12
EXTRA = ["Ζεύς", "Москва", "東京", "naïve", "café", "Æsop", "—", "“quoted”", "🙂", "señor"]


def book(rng, n_words):
    out, line, para = [], [], 0
    for i in range(n_words):
        w = rng.choice(EXTRA) if rng.random() < 0.01 else rng.choice(WORDS)
        if i == 0 or out and out[-1].endswith("."):
            w = w[:1].upper() + w[1:]
        w += rng.choice(PUNCT)
        out.append(w)
        line.append(w)
    # wrap at ~70 columns with CRLF, blank line between paragraphs
    text, col, lines = [], 0, []
    cur = []
    for w in out:
        if col + len(w) + 1 > 70:
            lines.append(" ".join(cur))
            cur, col = [], 0
            para += 1
            if para % 9 == 0:
                lines.append("")
        cur.append(w)
        col += len(w) + 1
    lines.append(" ".join(cur))
    return "\r\n\r\n\r\n" + "\r\n".join(lines) + "\r\n\r\n\r\nEnd of the Project Gutenberg EBook\r\n\r\n*** "


def main():
    out = sys.argv[1]
    rng = random.Random(19)
    plan = {"train": [(10000 + 7 * i) for i in range(8)], "validation": [20001, 20002],
            "test": [30001, 30002]}
    meta = []
    for split, ids in plan.items():
        os.makedirs(os.path.join(out, split), exist_ok=True)
        for bid in ids:
            text = book(rng, rng.randint(3000, 9000))
            tmp = os.path.join(out, split, f"{bid}.txt.tmp")
            with open(tmp, "wb") as f:
                f.write(text.encode("utf-8"))
            os.replace(tmp, os.path.join(out, split, f"{bid}.txt"))
            meta.append(f"{bid},Synthetic Book {bid},{1850 + bid % 70},"
                        f"http://www.gutenberg.org/ebooks/{bid}\n")
    with open(os.path.join(out, "metadata.csv"), "w") as f:
        f.writelines(meta)


if __name__ == "__main__":
    main()
