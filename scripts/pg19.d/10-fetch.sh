# Stage 10 (pg19): the official release, every file verified against the
# bucket listing (about 11.7 GB). Extra options: PG19_FETCH_ARGS, e.g.
# "--split validation,test" or "--jobs 32".
set -euo pipefail
# shellcheck disable=SC2086
bin/fetch pg19 --out "$PG19_WORK/pg19" ${PG19_FETCH_ARGS:-}
