/* Architectural state helpers shared by both accelerators. */
#include <string.h>

#include "machine/x86.h"

/* A flat 4 GiB segment: code (type 0xb, execute/read, accessed) or data
 * (type 0x3, read/write, accessed), 32-bit, page granular. */
static struct x86_segment flat_segment(uint16_t selector, uint8_t type)
{
    return (struct x86_segment){
        .selector = selector,
        .base = 0,
        .limit = 0xffffffffu,
        .type = type,
        .s = 1,
        .dpl = 0,
        .present = 1,
        .avl = 0,
        .db = 1,
        .g = 1,
    };
}

void x86_state_reset_flat(struct x86_state *st, uint32_t entry, uint32_t eax,
                          uint32_t ebx)
{
    memset(st, 0, sizeof(*st));
    st->regs[R_EAX] = eax;
    st->regs[R_EBX] = ebx;
    st->eip = entry;
    st->eflags = X86_EFLAGS_FIXED;
    /* Selectors as a multiboot loader's GDT would have them: code 0x08,
     * data 0x10.  The hidden parts are what matter; no GDT is loaded. */
    st->seg[S_CS] = flat_segment(0x08, 0xb);
    st->seg[S_DS] = flat_segment(0x10, 0x3);
    st->seg[S_ES] = flat_segment(0x10, 0x3);
    st->seg[S_SS] = flat_segment(0x10, 0x3);
    st->seg[S_FS] = flat_segment(0x10, 0x3);
    st->seg[S_GS] = flat_segment(0x10, 0x3);
    st->cr0 = 0x11; /* PE, ET */
    st->halted = false;
}
