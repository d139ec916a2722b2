/* RAM blocks on their backends and the PC memory map. */
#include "machine/memory.h"
#include "util/alloc.h"
#include "util/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t bitmap_words(uint64_t npages)
{
    return (npages + RAM_BITS_PER_WORD - 1) / RAM_BITS_PER_WORD;
}

static void block_free(struct ram_block *b)
{
    if (!b) {
        return;
    }
    mem_mapping_unmap(&b->map);
    free((void *)b->dirty);
    free(b->name);
    free(b);
}

static struct ram_block *block_new(const char *name, uint64_t size,
                                   const struct mem_backend *backend,
                                   Error **errp)
{
    if (size == 0 || size % RAM_PAGE_SIZE) {
        error_setg(errp,
                   "RAM block '%s': size %llu is not a positive "
                   "multiple of 4 KiB",
                   name, (unsigned long long)size);
        return NULL;
    }
    struct mem_backend anon;
    if (!backend) {
        mem_backend_default(&anon, size);
        backend = &anon;
    }
    struct ram_block *b = xcalloc(1, sizeof(*b));
    if (!mem_backend_map(backend, name, size, &b->map, errp)) {
        free(b);
        return NULL;
    }
    b->name = xstrdup(name);
    b->size = size;
    b->npages = size / RAM_PAGE_SIZE;
    b->dirty = xcalloc(bitmap_words(b->npages), sizeof(unsigned long));
    b->host = b->map.host;
    b->fd = b->map.fd;
    b->kind = backend->kind;
    snprintf(b->backend_id, sizeof(b->backend_id), "%s", backend->id);
    return b;
}

bool ram_block_adopt_fd(struct ram_block *b, int fd, Error **errp)
{
    if (!mem_mapping_adopt_fd(&b->map, fd, errp)) {
        error_prepend(errp, "RAM block '%s': ", b->name);
        return false;
    }
    b->fd = b->map.fd;
    return true;
}

struct ram_block *memory_add_block(struct machine_memory *mem, const char *name,
                                   uint64_t size,
                                   const struct mem_backend *backend,
                                   Error **errp)
{
    if (memory_find_block(mem, name)) {
        error_setg(errp, "RAM block '%s' already exists", name);
        return NULL;
    }
    if (mem->nblocks == RAM_MAX_BLOCKS) {
        error_setg(errp, "RAM block '%s': too many blocks", name);
        return NULL;
    }
    struct ram_block *b = block_new(name, size, backend, errp);
    if (b) {
        mem->blocks[mem->nblocks++] = b;
    }
    return b;
}

static void add_region(struct machine_memory *mem, struct ram_block *b,
                       uint64_t offset, uint64_t gpa, uint64_t size)
{
    struct accel_mem_region *r = &mem->regions[mem->nregions++];
    r->gpa = gpa;
    r->size = size;
    r->host = b->host + offset;
    /* offset is a multiple of 3 GiB or 0, so it starts a bitmap word. */
    r->dirty = b->dirty + offset / RAM_PAGE_SIZE / RAM_BITS_PER_WORD;
}

struct machine_memory *memory_new(uint64_t ram_size,
                                  const struct mem_backend *backend,
                                  Error **errp)
{
    if (ram_size < (2u << 20) || ram_size % RAM_PAGE_SIZE) {
        error_setg(errp,
                   "RAM size %llu: must be at least 2 MiB and a "
                   "multiple of 4 KiB",
                   (unsigned long long)ram_size);
        return NULL;
    }
    if (backend && backend->size != ram_size) {
        error_setg(errp,
                   "memory backend '%s' is %llu bytes but the machine's "
                   "RAM is %llu bytes (-m)",
                   backend->id, (unsigned long long)backend->size,
                   (unsigned long long)ram_size);
        return NULL;
    }
    struct machine_memory *mem = xcalloc(1, sizeof(*mem));
    mem->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    struct ram_block *b =
        memory_add_block(mem, "pc.ram", ram_size, backend, errp);
    if (!b) {
        memory_free(mem);
        return NULL;
    }
    mem->ram_size = ram_size;
    uint64_t low = ram_size < RAM_BELOW_4G_MAX ? ram_size : RAM_BELOW_4G_MAX;
    add_region(mem, b, 0, 0, low);
    if (ram_size > low) {
        add_region(mem, b, low, RAM_HIGH_BASE, ram_size - low);
    }
    return mem;
}

void memory_free(struct machine_memory *mem)
{
    if (!mem) {
        return;
    }
    for (int i = 0; i < mem->nblocks; i++) {
        block_free(mem->blocks[i]);
    }
    if (mem->pagemap_fd >= 0) {
        close(mem->pagemap_fd);
    }
    free(mem);
}

struct ram_block *memory_find_block(const struct machine_memory *mem,
                                    const char *name)
{
    for (int i = 0; i < mem->nblocks; i++) {
        if (strcmp(mem->blocks[i]->name, name) == 0) {
            return mem->blocks[i];
        }
    }
    return NULL;
}

struct ram_block *memory_main_block(const struct machine_memory *mem)
{
    return mem->nblocks ? mem->blocks[0] : NULL;
}

uint64_t ram_block_guest_addr(const struct machine_memory *mem,
                              const struct ram_block *b)
{
    for (int i = 0; i < mem->nregions; i++) {
        if (mem->regions[i].host == b->host) {
            return mem->regions[i].gpa;
        }
    }
    return 0;
}

uint64_t memory_below_4g(const struct machine_memory *mem)
{
    return mem->regions[0].size;
}

static const struct accel_mem_region *find_region(
    const struct machine_memory *mem, uint64_t gpa)
{
    for (int i = 0; i < mem->nregions; i++) {
        const struct accel_mem_region *r = &mem->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size) {
            return r;
        }
    }
    return NULL;
}

uint8_t *memory_host_ptr(const struct machine_memory *mem, uint64_t gpa,
                         uint64_t len)
{
    const struct accel_mem_region *r = find_region(mem, gpa);
    if (!r || len > r->size - (gpa - r->gpa)) {
        return NULL;
    }
    return r->host + (gpa - r->gpa);
}

/* Walk [gpa, gpa+len) region by region. */
static bool memory_access(const struct machine_memory *mem, uint64_t gpa,
                          uint8_t *buf, size_t len, bool write, Error **errp)
{
    while (len) {
        const struct accel_mem_region *r = find_region(mem, gpa);
        if (!r) {
            error_setg(errp, "guest physical address 0x%llx is not RAM",
                       (unsigned long long)gpa);
            return false;
        }
        uint64_t off = gpa - r->gpa;
        size_t n = r->size - off < len ? (size_t)(r->size - off) : len;
        if (write) {
            memcpy(r->host + off, buf, n);
            for (uint64_t p = off / RAM_PAGE_SIZE;
                 p <= (off + n - 1) / RAM_PAGE_SIZE; p++) {
                atomic_fetch_or(&r->dirty[p / RAM_BITS_PER_WORD],
                                1ul << (p % RAM_BITS_PER_WORD));
            }
        } else {
            memcpy(buf, r->host + off, n);
        }
        gpa += n;
        buf += n;
        len -= n;
    }
    return true;
}

bool memory_read(const struct machine_memory *mem, uint64_t gpa, void *buf,
                 size_t len, Error **errp)
{
    return memory_access(mem, gpa, buf, len, false, errp);
}

bool memory_write(struct machine_memory *mem, uint64_t gpa, const void *buf,
                  size_t len, Error **errp)
{
    return memory_access(mem, gpa, (uint8_t *)buf, len, true, errp);
}

/* pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst) */
#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_SWAPPED (1ull << 62)
#define MAY_HOLD_MAX 1024

/* Private memory: a page the page tables never had, nor swap, was never
 * written. */
static bool may_hold_private(const struct machine_memory *mem,
                             const struct ram_block *b, uint64_t first,
                             uint64_t n, uint8_t *vec)
{
    uint64_t entries[MAY_HOLD_MAX];
    uint64_t vpage = (uintptr_t)(b->host) / RAM_PAGE_SIZE + first;
    if (mem->pagemap_fd < 0 ||
        io_pread_full(mem->pagemap_fd, entries, n * 8, vpage * 8) !=
            (ssize_t)(n * 8)) {
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        vec[i] = (entries[i] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) != 0;
    }
    return true;
}

/* A shared fd: pages not in memory may be holes (never written) or
 * swapped out; SEEK_DATA tells them apart, one call per hole. */
static bool may_hold_shared(const struct ram_block *b, uint64_t first,
                            uint64_t n, uint8_t *vec)
{
    if (mincore(b->host + first * RAM_PAGE_SIZE, n * RAM_PAGE_SIZE, vec) < 0) {
        return false;
    }
    uint64_t hole_end = 0; /* pages below this are known holes */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t page = first + i;
        vec[i] &= 1;
        if (vec[i] || page < hole_end) {
            continue;
        }
        off_t data = lseek(b->fd, (off_t)(page * RAM_PAGE_SIZE), SEEK_DATA);
        if (data < 0 && errno == ENXIO) {
            data = (off_t)b->size; /* holes up to the end */
        }
        if (data <= (off_t)(page * RAM_PAGE_SIZE)) {
            vec[i] = 1; /* data after all, or no answer */
            continue;
        }
        hole_end = (uint64_t)data / RAM_PAGE_SIZE;
    }
    return true;
}

bool ram_block_may_hold_data(const struct machine_memory *mem,
                             const struct ram_block *b, uint64_t first,
                             uint64_t n, uint8_t *vec)
{
    if (first >= b->npages || n > b->npages - first || n > MAY_HOLD_MAX) {
        return false;
    }
    if (b->map.anonymous) {
        return may_hold_private(mem, b, first, n, vec);
    }
    if (b->fd >= 0 && b->map.shared) {
        return may_hold_shared(b, first, n, vec);
    }
    return false;
}

bool ram_block_prefault(struct ram_block *b, uint64_t offset, uint64_t len)
{
    if (offset >= b->size) {
        return false;
    }
    if (len > b->size - offset) {
        len = b->size - offset;
    }
    /* Not the touching fallback of mem_populate: other threads may be
     * writing these pages now. */
    return madvise(b->host + offset, len, MADV_POPULATE_WRITE) == 0;
}

bool memory_sync_dirty(struct machine_memory *mem, const struct accel_ops *ops,
                       struct accel *acc, Error **errp)
{
    (void)mem;
    if (!ops || !acc || !ops->sync_dirty) {
        return true;
    }
    return ops->sync_dirty(acc, errp);
}

void ram_block_set_dirty(struct ram_block *b, uint64_t offset, uint64_t len)
{
    if (!len || offset >= b->size) {
        return;
    }
    if (len > b->size - offset) {
        len = b->size - offset;
    }
    for (uint64_t p = offset / RAM_PAGE_SIZE;
         p <= (offset + len - 1) / RAM_PAGE_SIZE; p++) {
        atomic_fetch_or(&b->dirty[p / RAM_BITS_PER_WORD],
                        1ul << (p % RAM_BITS_PER_WORD));
    }
}

void ram_block_set_all_dirty(struct ram_block *b)
{
    uint64_t words = bitmap_words(b->npages);
    for (uint64_t w = 0; w < words; w++) {
        uint64_t first = w * RAM_BITS_PER_WORD;
        uint64_t n = b->npages - first;
        unsigned long bits = n >= RAM_BITS_PER_WORD ? ~0ul : (1ul << n) - 1;
        atomic_fetch_or(&b->dirty[w], bits);
    }
}

void ram_block_clear_all_dirty(struct ram_block *b)
{
    uint64_t words = bitmap_words(b->npages);
    for (uint64_t w = 0; w < words; w++) {
        atomic_store(&b->dirty[w], 0);
    }
}

bool ram_block_test_dirty(const struct ram_block *b, uint64_t page)
{
    if (page >= b->npages) {
        return false;
    }
    unsigned long w = atomic_load(&b->dirty[page / RAM_BITS_PER_WORD]);
    return w & (1ul << (page % RAM_BITS_PER_WORD));
}

bool ram_block_test_and_clear_dirty(struct ram_block *b, uint64_t page)
{
    if (page >= b->npages) {
        return false;
    }
    unsigned long mask = 1ul << (page % RAM_BITS_PER_WORD);
    /* Cheap read first: most pages are clean and a plain load does not
     * take the cache line away from vCPUs that set bits. */
    if (!(atomic_load(&b->dirty[page / RAM_BITS_PER_WORD]) & mask)) {
        return false;
    }
    return atomic_fetch_and(&b->dirty[page / RAM_BITS_PER_WORD], ~mask) & mask;
}

unsigned long ram_block_take_dirty_word(struct ram_block *b, uint64_t word)
{
    if (word >= bitmap_words(b->npages)) {
        return 0;
    }
    if (!atomic_load(&b->dirty[word])) {
        return 0;
    }
    return atomic_exchange(&b->dirty[word], 0);
}

uint64_t ram_block_dirty_words(const struct ram_block *b)
{
    return bitmap_words(b->npages);
}

uint64_t ram_block_count_dirty(const struct ram_block *b)
{
    uint64_t n = 0;
    for (uint64_t w = 0; w < bitmap_words(b->npages); w++) {
        n += (uint64_t)__builtin_popcountl(atomic_load(&b->dirty[w]));
    }
    return n;
}
