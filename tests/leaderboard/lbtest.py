"""Helpers shared by the leaderboard tests: consistent results JSON built from
bucket counts, and the PG19NLL1 dump writer (harness/RESULTS.md)."""
import copy
import hashlib
import math
import os
import struct

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PG19_WORDS = {"validation": 3007061, "test": 6966499}
PG19_BOOKS = {"train": 28602, "validation": 50, "test": 100}
BUCKETS = [("frequent", 10000, None), ("common", 1000, 10000), ("medium", 100, 1000),
           ("rare", 0, 100)]


def books_digest(books):
    """books_sha256 (harness/RESULTS.md): SHA-256 of "<id>\\t<bytes>\\t<sha256 hex>\\n" per
    book in increasing id order. books: (id, bytes, sha256 hex) tuples."""
    text = "".join(f"{i}\t{b}\t{h}\n" for i, b, h in sorted(books))
    return hashlib.sha256(text.encode()).hexdigest()


def pg19_books(split):
    """PG-19's own books of a split, from the list the project ships."""
    with open(os.path.join(TOP, "shards", "pg19_files.tsv")) as f:
        next(f)
        rows = [line.rstrip("\n").split("\t") for line in f]
    return [(int(i), int(b), h) for s, i, b, h in rows if s == split]


def pg19_digest(split):
    return books_digest(pg19_books(split))


def results(bucket_stats, split="test", official=True, books=None, bytes_=None, name="tiny-ct",
            shards=None, nll_dump=None, vocab_size=32000, vocab_sha256="ab" * 32):
    """A valid pg19-results/1 object. bucket_stats: 4 tuples (words, tokens, nll)."""
    words = sum(b[0] for b in bucket_stats)
    tokens = sum(b[1] for b in bucket_stats)
    nll = math.fsum(b[2] for b in bucket_stats)
    nbytes = bytes_ if bytes_ is not None else tokens * 4
    if official and split in PG19_WORDS:
        headline = {"normaliser": "pg19-table2", "words": PG19_WORDS[split],
                    "value": math.exp(nll / PG19_WORDS[split])}
    else:
        headline = {"normaliser": "exact", "words": words, "value": math.exp(nll / words)}
    r = {
        "schema": "pg19-results/1",
        "model": {"name": name, "family": "compressive-transformer", "params": 277000000,
                  "config_sha256": "c" * 64, "weights_sha256": "d" * 64,
                  "random_init_seed": None},
        "tokenizer": {"name": "pg19-32k", "kind": "sentencepiece-unigram",
                      "vocab_size": vocab_size, "vocab_sha256": vocab_sha256},
        "context": {"window": 512, "memory": 512, "compressed_memory": 512,
                    "compression_rate": 2, "attention_span": 1536},
        "eval": {"split": split, "official": official,
                 "book_set": "official" if official else "custom",
                 "books": books if books is not None else (PG19_BOOKS[split] if official else 3),
                 "books_sha256": pg19_digest(split) if official else
                 hashlib.sha256(f"{name} custom books".encode()).hexdigest(),
                 "book_handling": "whole", "chunk_tokens": None,
                 "shards": shards if shards is not None else
                 [{"file": f"{split}-00000.pgs", "sha256": "e" * 64}]},
        "totals": {"tokens": tokens, "bytes": nbytes, "words": words, "nll": nll,
                   "token_ppl": math.exp(nll / tokens),
                   "bits_per_byte": nll / (nbytes * math.log(2))},
        "word_ppl": headline,
        "word_ppl_exact": {"normaliser": "exact", "words": words, "value": math.exp(nll / words)},
        "buckets": [
            {"name": n, "min_freq": lo, "max_freq": hi, "words": w, "tokens": t, "nll": x,
             "word_ppl": math.exp(x / w) if w else None}
            for (n, lo, hi), (w, t, x) in zip(BUCKETS, bucket_stats)],
        "throughput": {"tokens_per_s": 1234.5, "seconds": tokens / 1234.5},
        "harness": {"name": "pg19-harness", "version": "0.1.0"},
        "date": "2026-11-23T12:00:00Z",
        "hardware": {"cpu": "test cpu", "threads": 2, "gpu": None},
    }
    if nll_dump is not None:
        r["nll_dump"] = nll_dump
    return r


def sample(**kw):
    """A valid official-test submission with plausible magnitudes."""
    stats = [(5_000_000, 5_400_000, 5_000_000 * 2.1), (1_200_000, 1_500_000, 1_200_000 * 5.2),
             (500_000, 800_000, 500_000 * 7.5), (266_499, 700_000, 266_499 * 10.3)]
    return results(stats, **kw)


def deep(obj):
    return copy.deepcopy(obj)


_CRC_TABLE = None


def crc32c(data, crc=0):
    global _CRC_TABLE
    if _CRC_TABLE is None:
        _CRC_TABLE = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _CRC_TABLE.append(c)
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def nll_dump(books):
    """PG19NLL1 bytes. books: list of (book_id, [nll floats])."""
    n_tokens = sum(len(v) for _, v in books)
    out = bytearray(b"PG19NLL1" + struct.pack("<IIQQ", 1, 1, len(books), n_tokens))
    for bid, v in books:
        out += struct.pack("<QQ", bid, len(v))
    for _, v in books:
        out += struct.pack(f"<{len(v)}f", *v)
    out += struct.pack("<I", crc32c(bytes(out)))
    return bytes(out)
