/* The plain RAM section. */
#include "machine/ram-section.h"

#include <string.h>

#define F_ZERO 0x02ull
#define F_MEM_SIZE 0x04ull
#define F_PAGE 0x08ull
#define F_EOS 0x10ull
#define F_CONTINUE 0x20ull
#define F_MASK 0xfffull

static bool save_setup(Channel *f, void *opaque, Error **errp)
{
    struct machine_memory *mem = opaque;
    uint64_t total = 0;
    for (int i = 0; i < mem->nblocks; i++) {
        total += mem->blocks[i]->size;
    }
    chan_put_be64(f, total | F_MEM_SIZE);
    for (int i = 0; i < mem->nblocks; i++) {
        chan_put_counted_string(f, mem->blocks[i]->name);
        chan_put_be64(f, mem->blocks[i]->size);
    }
    chan_put_be64(f, F_EOS);
    return chan_check(f, errp);
}

static int save_iterate(Channel *f, void *opaque, Error **errp)
{
    chan_put_be64(f, F_EOS);             /* everything goes at completion */
    return chan_check(f, errp) ? 1 : -1;
}

static bool page_is_zero(const uint8_t *p)
{
    static const uint8_t zero[RAM_PAGE_SIZE];
    return memcmp(p, zero, RAM_PAGE_SIZE) == 0;
}

static bool save_complete(Channel *f, void *opaque, Error **errp)
{
    struct machine_memory *mem = opaque;
    for (int i = 0; i < mem->nblocks; i++) {
        struct ram_block *b = mem->blocks[i];
        for (uint64_t off = 0; off < b->size; off += RAM_PAGE_SIZE) {
            const uint8_t *p = b->host + off;
            bool zero = page_is_zero(p);
            uint64_t flags = (zero ? F_ZERO : F_PAGE) |
                             (off ? F_CONTINUE : 0);
            chan_put_be64(f, off | flags);
            if (!off) {
                chan_put_counted_string(f, b->name);
            }
            if (zero) {
                chan_put_u8(f, 0);
            } else {
                chan_put_buffer(f, p, RAM_PAGE_SIZE);
            }
            if (chan_has_error(f)) {
                return chan_check(f, errp);
            }
        }
    }
    chan_put_be64(f, F_EOS);
    return chan_check(f, errp);
}

static uint64_t save_pending(void *opaque)
{
    struct machine_memory *mem = opaque;
    uint64_t total = 0;
    for (int i = 0; i < mem->nblocks; i++) {
        total += mem->blocks[i]->size;
    }
    return total;
}

static bool load_blocks(Channel *f, struct machine_memory *mem,
                        uint64_t total, Error **errp)
{
    while (total) {
        char name[256];
        if (!chan_get_counted_string(f, name)) {
            return chan_check(f, errp);
        }
        uint64_t len = chan_get_be64(f);
        struct ram_block *b = memory_find_block(mem, name);
        if (!b) {
            error_setg(errp, "ram: unknown RAM block '%s'", name);
            return false;
        }
        if (b->size != len) {
            error_setg(errp, "ram: block '%s' is %llu bytes in the stream, "
                       "%llu here", name, (unsigned long long)len,
                       (unsigned long long)b->size);
            return false;
        }
        if (len > total) {
            error_setg(errp, "ram: block list exceeds its total size");
            return false;
        }
        total -= len;
    }
    return chan_check(f, errp);
}

static bool load_state(Channel *f, void *opaque, int version_id,
                       Error **errp)
{
    struct machine_memory *mem = opaque;
    struct ram_block *b = NULL;
    if (version_id != RAM_SECTION_VERSION) {
        error_setg(errp, "ram: section version %d, expected %d", version_id,
                   RAM_SECTION_VERSION);
        return false;
    }
    for (;;) {
        uint64_t hdr = chan_get_be64(f);
        if (chan_has_error(f)) {
            return chan_check(f, errp);
        }
        uint64_t flags = hdr & F_MASK, addr = hdr & ~F_MASK;
        if (flags & F_MEM_SIZE) {
            if (!load_blocks(f, mem, addr, errp)) {
                return false;
            }
            continue;
        }
        if (flags & F_EOS) {
            return true;
        }
        if (!(flags & (F_ZERO | F_PAGE))) {
            error_setg(errp, "ram: unsupported page flags 0x%llx",
                       (unsigned long long)flags);
            return false;
        }
        if (!(flags & F_CONTINUE)) {
            char name[256];
            if (!chan_get_counted_string(f, name)) {
                return chan_check(f, errp);
            }
            b = memory_find_block(mem, name);
            if (!b) {
                error_setg(errp, "ram: unknown RAM block '%s'", name);
                return false;
            }
        }
        if (!b) {
            error_setg(errp, "ram: page record continues no block");
            return false;
        }
        if (addr >= b->size) {
            error_setg(errp, "ram: page offset 0x%llx is past the end of "
                       "block '%s'", (unsigned long long)addr, b->name);
            return false;
        }
        uint8_t *p = b->host + addr;
        if (flags & F_ZERO) {
            uint8_t fill = chan_get_u8(f);
            /* Leave pages that already hold the value untouched, so a
             * fresh machine's memory stays unallocated. */
            if (fill != 0 || !page_is_zero(p)) {
                memset(p, fill, RAM_PAGE_SIZE);
            }
        } else if (!chan_get_buffer(f, p, RAM_PAGE_SIZE)) {
            return chan_check(f, errp);
        }
        ram_block_set_dirty(b, addr, RAM_PAGE_SIZE);
    }
}

const struct live_handler_ops ram_section_ops = {
    .save_setup = save_setup,
    .save_iterate = save_iterate,
    .save_complete = save_complete,
    .save_pending = save_pending,
    .load_state = load_state,
};

bool ram_section_register(struct section_registry *reg,
                          struct machine_memory *mem, Error **errp)
{
    return section_register_live(reg, "ram", 0, RAM_SECTION_VERSION,
                                 &ram_section_ops, mem, errp) >= 0;
}
