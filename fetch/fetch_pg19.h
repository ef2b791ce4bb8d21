/* fetch_pg19.h - `fetch pg19`: the official PG-19 release from its bucket.
 *
 * Lists the bucket (Cloud Storage JSON API), selects metadata.csv and the
 * books of the requested splits, skips files a previous run verified, and
 * downloads the rest with the transfer engine (transfer.h), verifying each
 * against the listing's size, MD5 and CRC32C (and SHA-256 from a file list
 * when --sha256-list is given). Writes DIR/metadata.csv,
 * DIR/{train,validation,test}/<id>.txt and DIR/MANIFEST.tsv (manifest.h).
 */
#ifndef PG19_FETCH_PG19_H
#define PG19_FETCH_PG19_H

int fetch_cmd_pg19(int argc, char **argv);

#endif
