/* gutenberg_main.c - temporary front end `fetch-gutenberg` for the Gutenberg
 * subcommands until they are wired into bin/fetch (fetch/main.c). */
#include <stdio.h>
#include <string.h>

#include "fetch/gutenberg_cmds.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: fetch-gutenberg COMMAND [ARGS]\n"
            "  catalog    [--rdf-dir DIR | --csv FILE | FEED.tar.bz2 | --url URL] -o CATALOG.tsv\n"
            "  gutenberg  --ids FILE | --catalog CATALOG.tsv [--language en ...] --out DIR\n"
            "  clean      [--pg19] RAW -o OUT | --dir RAWDIR -o OUTDIR\n"
            "  split      --official METADATA.csv FILELIST -o DIR | --hash IDS -o DIR\n"
            "Run a command with --help for its options.\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "catalog")) return fetch_cmd_catalog(argc - 1, argv + 1);
    if (!strcmp(cmd, "gutenberg")) return fetch_cmd_gutenberg(argc - 1, argv + 1);
    if (!strcmp(cmd, "clean")) return fetch_cmd_clean(argc - 1, argv + 1);
    if (!strcmp(cmd, "split")) return fetch_cmd_split(argc - 1, argv + 1);
    return usage();
}
