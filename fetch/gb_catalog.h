/* gb_catalog.h - Project Gutenberg catalog records (RDF/XML, pg_catalog.csv)
 * and selection of books from the catalog TSV that `fetch catalog` writes. */
#ifndef PG19_GB_CATALOG_H
#define PG19_GB_CATALOG_H

#include <stddef.h>

#include "common/error.h"

/* Receives one catalog line (malloc'd, ownership passes on success). */
typedef int (*catalog_sink)(void *ctx, long id, char *line);

/* Parses one RDF/XML record (no network, no entity expansion) and hands each
 * pgterms:ebook in it to sink as a TSV line. PG_ECORRUPT if malformed. */
int gb_catalog_parse_rdf(const char *name, const char *xml, size_t len, catalog_sink sink,
                         void *ctx, pg_error *err);

/* Selection over a catalog TSV; empty/zero fields do not filter. */
typedef struct gb_select {
    const char *language;       /* e.g. "en": one of the book's languages */
    const char *type;           /* e.g. "Text" */
    int max_issued_year;        /* PG release year <= this */
    int author_died_before;     /* every author with a death year died before this */
    long limit;                 /* first N matches by id */
} gb_select;

/* Reads the catalog TSV at path and returns the matching ids (sorted) in a
 * malloc'd array. */
int gb_catalog_select(const char *path, const gb_select *sel, long **ids, size_t *n,
                      pg_error *err);

/* Reads ids from a file: one per line, first field (tab/comma separated);
 * '#' comments and a non-numeric header line are skipped. Sorted, unique. */
int gb_read_ids(const char *path, long **ids, size_t *n, pg_error *err);

#endif
