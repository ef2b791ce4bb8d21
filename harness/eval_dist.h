/* eval_dist.h - `harness run` over several processes (Open MPI, harness/dist.h).
 *
 * The books of the split are cut into contiguous ranges, one per rank,
 * balanced by token count (each book whole on one rank: books are
 * independent, so the split is exact). Every rank evaluates its range with
 * pg_evaluate on its own backend; rank 0 gathers each book's id, token
 * count, totals and per-token NLLs, puts them in book order and sums the
 * totals per book in book order (pg_eval_sum_books), exactly as a single
 * process does. So the NLL dump and every metric are byte-identical to a
 * one-process run with the same backend and precision (on a GPU: and the
 * same --batch); only the wall time differs.
 */
#ifndef PG19_HARNESS_EVAL_DIST_H
#define PG19_HARNESS_EVAL_DIST_H

#include <stdint.h>

#include "harness/dist.h"
#include "harness/eval.h"

/* The first book of rank r's range (r in [0, size]); sizes[i] are the tokens
 * scored in book i. Book i goes to the rank whose share of the total holds
 * the middle of the book. */
uint64_t pg_dist_first_book(const uint64_t *sizes, uint64_t n_books, int rank, int size);

/* pg_evaluate over all ranks; on rank 0 res is the result of the whole
 * source (as pg_evaluate's), on the others it holds only their own books.
 * Every rank must call it; an error on any rank is an error on all. */
int pg_evaluate_dist(const pg_dist *d, const pg_model *m, const pg_book_source *src,
                     const pg_eval_opts *opts, pg_eval_result *res, pg_error *err);

#endif
