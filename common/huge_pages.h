/* huge_pages.h - zeroed allocations backed by transparent huge pages.
 *
 * The model's weights and the forward's and training step's activations are
 * one allocation each (tens of MB to GB) that every window sweeps. With
 * 4 KiB pages that sweep misses the TLB often, and how often depends on
 * where the kernel happened to put the pages: measured on `harness bench`
 * (bench-mid, one thread), the forward ran 11% faster on huge pages. Linux's
 * usual THP setting is "madvise", so a program has to ask; this asks
 * (MADV_HUGEPAGE on a 2 MiB-aligned block) and falls back to plain pages
 * wherever the kernel says no. Free with free().
 */
#ifndef PG19_COMMON_HUGE_PAGES_H
#define PG19_COMMON_HUGE_PAGES_H

#include <stddef.h>

/* n elements of `size` bytes, zeroed, 2 MiB-aligned when n * size is at
 * least 2 MiB; NULL when out of memory or n * size overflows. */
void *pg_calloc_huge(size_t n, size_t size);

#endif
