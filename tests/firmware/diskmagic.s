# Test kernel: writes a sector that starts with the qcow2 magic ("QFI\xfb")
# to LBA 0 of the ATA master, prints the status the drive ends with on
# COM1 ("diskmagic: status 50" written, "41" refused), then halts.
        .code32
        .text
        .include "common.inc"
        .section .multiboot, "a"
        multiboot_header _start

        .set BUF, 0x20000

        .text
        .globl _start
_start:
        cpu_stack 0x90000
        call serial_init
        # The sector: the magic, then a recognisable pattern.
        mov $BUF, %edi
        mov $128, %ecx
        mov $0x5a5a5a5a, %eax
        cld
        rep stosl
        movl $0xfb494651, BUF           # bytes 'Q' 'F' 'I' 0xfb
        # WRITE SECTORS, LBA28, one sector at LBA 0.
        mov $0x1f2, %dx
        mov $1, %al
        outb %al, %dx
        xor %al, %al
        mov $0x1f3, %dx
        outb %al, %dx
        mov $0x1f4, %dx
        outb %al, %dx
        mov $0x1f5, %dx
        outb %al, %dx
        mov $0x1f6, %dx
        mov $0xe0, %al
        outb %al, %dx
        mov $0x1f7, %dx
        mov $0x30, %al
        outb %al, %dx
1:      inb %dx, %al
        test $0x80, %al                 # BSY
        jnz 1b
        test $0x08, %al                 # DRQ: the drive takes the data
        jz 2f
        mov $BUF, %esi
        mov $256, %ecx
        mov $0x1f0, %dx
        rep outsw
        mov $0x1f7, %dx
3:      inb %dx, %al
        test $0x80, %al
        jnz 3b
2:      mov %eax, %ebx
        mov $msg, %esi
        call puts
        mov %ebx, %eax
        call puthex8
        mov $'\n', %al
        call putc
4:      cli
        hlt
        jmp 4b

msg:    .asciz "diskmagic: status "
