# counter: prints "counter: N" on COM1 for N = 1, 2, 3, ... forever, with a
# short busy wait between lines.  N lives in ebx, so it travels with the
# CPU state.
        .code32
        .text
        .include "common.inc"
        .section .multiboot, "a"
        multiboot_header _start

        .text
        .globl _start
_start:
        cpu_stack 0x90000
        park_other_cpus
        call serial_init
        xor %ebx, %ebx
next:
        inc %ebx
        mov $prefix, %esi
        call puts
        mov %ebx, %eax
        call putdec
        mov $'\n', %al
        call putc
        mov $50000, %ecx                # a plain delay loop (no PAUSE:
1:      loop 1b                         # an emulator may yield on it)
        jmp next

prefix: .asciz "counter: "
