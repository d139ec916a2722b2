/* Whole-machine test helpers. */
#include "tests/unit/machine-fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ram/ram.h"

void capture_init(struct serial_capture *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
}

void capture_free(struct serial_capture *c)
{
    free(c->buf);
    pthread_mutex_destroy(&c->lock);
}

static void capture_write(void *opaque, const uint8_t *buf, size_t len)
{
    struct serial_capture *c = opaque;
    pthread_mutex_lock(&c->lock);
    if (c->len + len + 1 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        while (cap < c->len + len + 1) {
            cap *= 2;
        }
        c->buf = realloc(c->buf, cap);
        c->cap = cap;
    }
    memcpy(c->buf + c->len, buf, len);
    c->len += len;
    c->buf[c->len] = '\0';
    pthread_mutex_unlock(&c->lock);
}

struct serial_backend capture_backend(struct serial_capture *c)
{
    return (struct serial_backend){ .write = capture_write, .opaque = c };
}

char *capture_text(struct serial_capture *c)
{
    pthread_mutex_lock(&c->lock);
    char *s = strndup(c->buf ? c->buf : "", c->len);
    pthread_mutex_unlock(&c->lock);
    return s;
}

size_t capture_count(struct serial_capture *c, char ch)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->len; i++) {
        n += c->buf[i] == ch;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

bool capture_contains(struct serial_capture *c, const char *s)
{
    pthread_mutex_lock(&c->lock);
    bool found = c->buf && strstr(c->buf, s);
    pthread_mutex_unlock(&c->lock);
    return found;
}

int64_t fixture_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool capture_wait_for(struct serial_capture *c, const char *s, int timeout_ms)
{
    int64_t end = fixture_now_ns() + (int64_t)timeout_ms * 1000000;
    while (!capture_contains(c, s)) {
        if (fixture_now_ns() > end) {
            return false;
        }
        usleep(2000);
    }
    return true;
}

bool capture_wait_count(struct serial_capture *c, char ch, size_t n,
                        int timeout_ms)
{
    int64_t end = fixture_now_ns() + (int64_t)timeout_ms * 1000000;
    while (capture_count(c, ch) < n) {
        if (fixture_now_ns() > end) {
            return false;
        }
        usleep(2000);
    }
    return true;
}

const char *kvm_unusable_reason(void)
{
    static char reason[256];
    Error *err = NULL;
    if (accel_kvm_ops.available(&err)) {
        return NULL;
    }
    snprintf(reason, sizeof(reason), "%s", error_get_pretty(err));
    error_free(err);
    return reason;
}

static bool seg_equal(const struct x86_segment *a, const struct x86_segment *b)
{
    return a->selector == b->selector && a->base == b->base &&
        a->limit == b->limit && a->type == b->type && a->s == b->s &&
        a->dpl == b->dpl && a->present == b->present && a->db == b->db &&
        a->g == b->g;
}

bool x86_state_equal(const struct x86_state *a, const struct x86_state *b,
                     char *msg, size_t msglen)
{
    static const char *const names[] = { "eax", "ecx", "edx", "ebx",
                                         "esp", "ebp", "esi", "edi" };
    for (int i = 0; i < X86_NR_REGS; i++) {
        if (a->regs[i] != b->regs[i]) {
            snprintf(msg, msglen, "%s: 0x%x != 0x%x", names[i], a->regs[i],
                     b->regs[i]);
            return false;
        }
    }
    struct {
        const char *n;
        uint32_t x, y;
    } scalars[] = {
        { "eip", a->eip, b->eip },
        { "eflags", a->eflags, b->eflags },
        { "cr0", a->cr0, b->cr0 },
        { "cr2", a->cr2, b->cr2 },
        { "cr3", a->cr3, b->cr3 },
        { "cr4", a->cr4, b->cr4 },
        { "gdt.base", a->gdt.base, b->gdt.base },
        { "gdt.limit", a->gdt.limit, b->gdt.limit },
        { "idt.base", a->idt.base, b->idt.base },
        { "idt.limit", a->idt.limit, b->idt.limit },
        { "halted", a->halted, b->halted },
    };
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        if (scalars[i].x != scalars[i].y) {
            snprintf(msg, msglen, "%s: 0x%x != 0x%x", scalars[i].n,
                     scalars[i].x, scalars[i].y);
            return false;
        }
    }
    for (int i = 0; i < X86_NR_SREGS; i++) {
        if (!seg_equal(&a->seg[i], &b->seg[i])) {
            snprintf(msg, msglen,
                     "segment %d: selector 0x%x/0x%x base "
                     "0x%x/0x%x type %u/%u",
                     i, a->seg[i].selector, b->seg[i].selector, a->seg[i].base,
                     b->seg[i].base, a->seg[i].type, b->seg[i].type);
            return false;
        }
    }
    return true;
}

struct ram_state *fixture_register_ram(struct machine *m)
{
    struct ram_state *rs = ram_state_new(m);
    Error *err = NULL;
    if (!ram_register(rs, machine_registry(m), &err)) {
        fprintf(stderr, "ram_register: %s\n", error_get_pretty(err));
        abort();
    }
    return rs;
}
