/* RAM blocks on memfd and the PC memory map. */
#include "machine/memory.h"
#include "util/alloc.h"

#include <errno.h>
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
    if (b->host) {
        munmap(b->host, b->size);
    }
    if (b->fd >= 0) {
        close(b->fd);
    }
    free((void *)b->dirty);
    free(b->name);
    free(b);
}

static struct ram_block *block_new(const char *name, uint64_t size,
                                   Error **errp)
{
    if (size == 0 || size % RAM_PAGE_SIZE) {
        error_setg(errp,
                   "RAM block '%s': size %llu is not a positive "
                   "multiple of 4 KiB",
                   name, (unsigned long long)size);
        return NULL;
    }
    struct ram_block *b = xcalloc(1, sizeof(*b));
    b->fd = -1;
    b->name = xstrdup(name);
    b->size = size;
    b->npages = size / RAM_PAGE_SIZE;
    b->dirty = xcalloc(bitmap_words(b->npages), sizeof(unsigned long));
    b->fd = memfd_create(name, MFD_CLOEXEC);
    if (b->fd < 0) {
        error_setg_errno(errp, errno, "RAM block '%s': memfd_create", name);
        goto fail;
    }
    if (ftruncate(b->fd, (off_t)size) < 0) {
        error_setg_errno(errp, errno,
                         "RAM block '%s': cannot size to %llu "
                         "bytes",
                         name, (unsigned long long)size);
        goto fail;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
    if (p == MAP_FAILED) {
        error_setg_errno(errp, errno, "RAM block '%s': mmap of %llu bytes",
                         name, (unsigned long long)size);
        goto fail;
    }
    b->host = p;
    return b;
fail:
    block_free(b);
    return NULL;
}

struct ram_block *memory_add_block(struct machine_memory *mem, const char *name,
                                   uint64_t size, Error **errp)
{
    if (memory_find_block(mem, name)) {
        error_setg(errp, "RAM block '%s' already exists", name);
        return NULL;
    }
    if (mem->nblocks == RAM_MAX_BLOCKS) {
        error_setg(errp, "RAM block '%s': too many blocks", name);
        return NULL;
    }
    struct ram_block *b = block_new(name, size, errp);
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

struct machine_memory *memory_new(uint64_t ram_size, Error **errp)
{
    if (ram_size < (2u << 20) || ram_size % RAM_PAGE_SIZE) {
        error_setg(errp,
                   "RAM size %llu: must be at least 2 MiB and a "
                   "multiple of 4 KiB",
                   (unsigned long long)ram_size);
        return NULL;
    }
    struct machine_memory *mem = xcalloc(1, sizeof(*mem));
    struct ram_block *b = memory_add_block(mem, "pc.ram", ram_size, errp);
    if (!b) {
        free(mem);
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
