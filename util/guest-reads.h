/* Host threads read guest RAM while vCPU threads write it: the migration
 * thread sends pages, the dirty-rate sampler hashes them.  That race is
 * the design of live migration (the dirty bitmap makes it right: a page
 * written while it is read is sent again), so under ThreadSanitizer
 * (`make check SANITIZE=thread`) those reads are left out of its checks
 * with its dynamic annotations; in every other build these are no-ops.
 * Keep the bracketed stretches to reads of guest pages.
 *
 * The emulator's vCPUs read and write guest RAM for the guest: two vCPUs
 * racing on one guest word is the guest program's business (x86's memory
 * model, LOCKed instructions are atomic here), not a host defect, so the
 * emulator's guest loads and stores are bracketed with GUEST_ACCESS_*. */
#ifndef HOP_UTIL_GUEST_READS_H
#define HOP_UTIL_GUEST_READS_H

#ifdef __SANITIZE_THREAD__
/* ThreadSanitizer's runtime exports these. */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define GUEST_READS_BEGIN() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define GUEST_READS_END() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
#define GUEST_ACCESS_BEGIN()                                                   \
    do {                                                                       \
        AnnotateIgnoreReadsBegin(__FILE__, __LINE__);                          \
        AnnotateIgnoreWritesBegin(__FILE__, __LINE__);                         \
    } while (0)
#define GUEST_ACCESS_END()                                                     \
    do {                                                                       \
        AnnotateIgnoreWritesEnd(__FILE__, __LINE__);                           \
        AnnotateIgnoreReadsEnd(__FILE__, __LINE__);                            \
    } while (0)
#else
#define GUEST_READS_BEGIN()                                                    \
    do {                                                                       \
    } while (0)
#define GUEST_READS_END()                                                      \
    do {                                                                       \
    } while (0)
#define GUEST_ACCESS_BEGIN()                                                   \
    do {                                                                       \
    } while (0)
#define GUEST_ACCESS_END()                                                     \
    do {                                                                       \
    } while (0)
#endif

#endif
