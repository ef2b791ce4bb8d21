/* gutenberg_cmds.h - the Project Gutenberg subcommands of `fetch`.
 *
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status: 0 success, 1 failure,
 * 2 usage error. They print their own errors to stderr.
 *
 *   catalog     rdf-files.tar.bz2 / RDF records / pg_catalog.csv -> catalog TSV
 *   gutenberg   download plain texts from a Gutenberg mirror (+ clean)
 *   clean       decode a raw text and strip the licence text (--pg19: PG-19's cut)
 *   split       official PG-19 split lists, or a deterministic hash split
 */
#ifndef PG19_GUTENBERG_CMDS_H
#define PG19_GUTENBERG_CMDS_H

int fetch_cmd_catalog(int argc, char **argv);
int fetch_cmd_gutenberg(int argc, char **argv);
int fetch_cmd_clean(int argc, char **argv);
int fetch_cmd_split(int argc, char **argv);

#endif
