/* Where guest RAM lives: a memory backend, spelled as QEMU's -object
 * memory-backend-{ram,memfd,file}.
 *
 *   ram    anonymous private memory, MADV_HUGEPAGE (QEMU's default; the
 *          kernel backs it with 2 MiB pages when THP allows it, which
 *          makes first touch of fresh memory several times cheaper)
 *   memfd  a memfd, shared (default) or private, optionally on hugetlb
 *   file   a file, e.g. on hugetlbfs (mem-path names it, or a directory
 *          to create an unlinked file in), private unless share=on
 *
 * Every backend maps into this process the same way; what differs is
 * whether another process can map the same pages (fd >= 0 and shared)
 * and how never-written pages can be told from written ones. */
#ifndef HOP_MACHINE_MEMORY_BACKEND_H
#define HOP_MACHINE_MEMORY_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

enum mem_backend_kind {
    MEM_BACKEND_RAM,
    MEM_BACKEND_MEMFD,
    MEM_BACKEND_FILE,
};

#define MEM_BACKEND_ID_MAX 64

/* One -object memory-backend-*,... */
struct mem_backend {
    enum mem_backend_kind kind;
    char id[MEM_BACKEND_ID_MAX];
    uint64_t size;
    bool share;          /* MAP_SHARED */
    bool hugetlb;        /* memfd on hugetlbfs */
    bool prealloc;       /* populate every page at creation */
    char mem_path[4096]; /* file */
};

/* Parses the value of -object, e.g.
 * "memory-backend-memfd,id=mem0,size=1G,share=on"; errors name the key. */
bool mem_backend_parse(struct mem_backend *be, const char *spec, Error **errp);
/* The default: anonymous memory of size bytes. */
void mem_backend_default(struct mem_backend *be, uint64_t size);
const char *mem_backend_type_name(enum mem_backend_kind kind);
/* "memory-backend-ram" ... NULL-terminated, for help and completion. */
extern const char *const mem_backend_types[];

/* size bytes of the backend, mapped read-write. */
struct mem_mapping {
    uint8_t *host;
    uint64_t size;
    int fd;         /* -1 for anonymous memory */
    bool shared;    /* MAP_SHARED: the fd's pages are the guest's */
    bool anonymous; /* private pages start as zeros (ram; memfd share=off) */
    bool prealloc;  /* every page was made resident at creation */
    uint64_t page_size; /* host page size backing it (4 KiB or huge) */
};

/* name names the block in errors and /proc/PID/maps. */
bool mem_backend_map(const struct mem_backend *be, const char *name,
                     uint64_t size, struct mem_mapping *map, Error **errp);
void mem_mapping_unmap(struct mem_mapping *map);

/* The page size of memory behind fd: the huge page size on hugetlbfs,
 * else the host's. */
uint64_t mem_fd_page_size(int fd);
/* Puts the pages of fd (another process's backend, as cpr-transfer
 * passes it) where map's were, at the same address, and takes fd over;
 * map's own pages are let go.  fd must hold map->size bytes on pages of
 * map's size.  On failure nothing changes and fd stays the caller's. */
bool mem_mapping_adopt_fd(struct mem_mapping *map, int fd, Error **errp);

/* A new process mapping the same backend first maps memory of its own
 * (and only then takes this mapping's): on hugetlb that memory is
 * reserved at once, so false (with the counts) when the host's pool has
 * no room for a second copy. */
bool mem_mapping_check_room_again(const struct mem_mapping *map, Error **errp);

/* Makes [host, host+len) resident and writable without changing its
 * contents (first-touch faults happen here, not later). */
bool mem_populate(void *host, uint64_t len, Error **errp);

#endif
