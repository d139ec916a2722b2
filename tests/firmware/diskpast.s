# Test kernel: asks the ATA drive to write the sector just past its end
# (taken from IDENTIFY), prints the status it got on COM1, then halts.
        .code32
        .text
        .include "common.inc"
        .section .multiboot, "a"
        multiboot_header _start

        .text
        .globl _start
_start:
        cpu_stack 0x90000
        call serial_init
        mov $0x1f6, %dx
        mov $0xe0, %al
        outb %al, %dx
        mov $0x1f7, %dx
        mov $0xec, %al
        outb %al, %dx
1:      inb %dx, %al
        test $0x80, %al
        jnz 1b
        mov $0x20000, %edi
        mov $256, %ecx
        mov $0x1f0, %dx
        rep insw
        mov 0x20000+120, %ebx           # sectors: the first one past the end
        mov $0x1f2, %dx
        mov $1, %al
        outb %al, %dx
        mov %ebx, %eax
        mov $0x1f3, %dx
        outb %al, %dx
        shr $8, %eax
        mov $0x1f4, %dx
        outb %al, %dx
        shr $8, %eax
        mov $0x1f5, %dx
        outb %al, %dx
        mov $0x1f6, %dx
        mov $0xe0, %al
        outb %al, %dx
        mov $0x1f7, %dx
        mov $0x30, %al                  # WRITE SECTORS
        outb %al, %dx
        inb %dx, %al
        mov $msg, %esi
        call puts
        call puthex8
        mov $'\n', %al
        call putc
2:      cli
        hlt
        jmp 2b

msg:    .asciz "diskpast: status "
