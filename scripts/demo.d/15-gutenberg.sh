#!/usr/bin/env bash
# Stage 15 (demo): build a PG-19-style corpus from a Project Gutenberg mirror,
# offline: a loopback mirror of generated ebooks (every header era, UTF-8 and
# cp1252, the files/ and cache/epub/ layouts and zips) stands in for
# gutenberg.org. catalog -> gutenberg (download + clean) -> split.
# Output: $PG19_WORK/gutenberg/{catalog.tsv,books/,split/}. If stage 10 has not
# produced $PG19_WORK/pg19 (no metadata.csv), this corpus becomes it.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
FETCH_GUTENBERG=${FETCH_GUTENBERG:-$top/bin/fetch}
PY=${PYTHON:-/usr/bin/python3}
G=$PG19_WORK/gutenberg
rm -rf "$G"
mkdir -p "$G"

"$PY" "$top/tests/fetch_gutenberg/gbtools.py" make-mirror "$G/mirror" --books 60
"$PY" "$top/tests/fetch_gutenberg/gbtools.py" serve "$G/mirror" --port-file "$G/mirror.url" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$G/mirror.url" ] && break; sleep 0.1; done
mirror=$(cat "$G/mirror.url")

"$FETCH_GUTENBERG" catalog --url "$mirror/cache/epub/feeds/rdf-files.tar.bz2" -o "$G/catalog.tsv"
"$FETCH_GUTENBERG" gutenberg --catalog "$G/catalog.tsv" --language en --mirror "$mirror" \
    --out "$G/books" --jobs 2 --delay 0 --min-words 1000
"$FETCH_GUTENBERG" split --hash "$G/catalog.tsv" --language en --test 5 --validation 5 -o "$G/split"
echo "gutenberg: $(grep -c $'\tok\t' "$G/books/manifest.tsv") books cleaned," \
     "manifest $G/books/manifest.tsv"

if [ ! -s "$PG19_WORK/pg19/metadata.csv" ]; then
    echo "gutenberg: no stage-10 corpus in $PG19_WORK/pg19; building it from this one"
    out=$PG19_WORK/pg19
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    for s in train validation test; do
        mkdir -p "$out.tmp/$s"
        while read -r id; do
            [ -f "$G/books/clean/$id.txt" ] && cp "$G/books/clean/$id.txt" "$out.tmp/$s/$id.txt"
        done < "$G/split/$s.txt"
    done
    # metadata.csv as PG-19 ships it: id,title,year,url (no header)
    awk -F'\t' 'NR > 1 { t = $2; gsub(/"/, "\"\"", t); y = substr($6, 1, 4)
                         printf "%s,\"%s\",%s,http://www.gutenberg.org/ebooks/%s\n", $1, t, y, $1 }' \
        "$G/catalog.tsv" > "$out.tmp/metadata.csv"
    rm -rf "$out" && mv "$out.tmp" "$out"
fi
