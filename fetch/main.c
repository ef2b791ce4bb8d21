/* fetch - get PG-19: the official release, or a rebuild from Project Gutenberg.
 *
 *   fetch pg19 [options]     the official release from its Cloud Storage bucket
 *   fetch catalog|gutenberg|clean|split   rebuild from Project Gutenberg (gutenberg_cmds.h)
 *
 * Each subcommand lives in its own module; this file only dispatches. */
#include <stdio.h>
#include <string.h>

#include "fetch/fetch_pg19.h"
#include "fetch/gutenberg_cmds.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"pg19", fetch_cmd_pg19, "download and verify the official PG-19 release"},
    {"catalog", fetch_cmd_catalog, "Project Gutenberg's catalog (RDF feed or CSV) as a compact TSV"},
    {"gutenberg", fetch_cmd_gutenberg, "download plain texts from a Gutenberg mirror and clean them"},
    {"clean", fetch_cmd_clean, "decode a raw Gutenberg text and strip the licence text (--pg19: PG-19's cut)"},
    {"split", fetch_cmd_split, "the official PG-19 split lists, or a deterministic hash split"},
};

static void usage(FILE *fp)
{
    fprintf(fp, "usage: fetch COMMAND [options]   (fetch COMMAND --help for its options)\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "fetch: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
