/* analyze_cmd.h - `harness analyze ...`: argv from the word after "analyze";
 * returns the process exit code (0 ok, 1 failure, 2 usage). */
#ifndef PG19_HARNESS_ANALYZE_CMD_H
#define PG19_HARNESS_ANALYZE_CMD_H

#include "harness/train.h" /* pg_find_config_fn */

int pg_analyze_main(int argc, char **argv, pg_find_config_fn find_config);

#endif
