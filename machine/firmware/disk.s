# disk: writes a pattern to every sector of the ATA master drive (LBA28
# PIO, one sector per command), flushes, reads everything back and prints
# "disk: OK" or "disk: bad sector N"; then halts.
        .code32
        .set BUF, 0x20000               # one sector of data

        .text
        .include "common.inc"
        .include "ata.inc"
        .section .multiboot, "a"
        multiboot_header _start

        .text
        .globl _start
_start:
        cpu_stack 0x90000
        park_other_cpus
        call serial_init
        mov $msg_start, %esi
        call puts
        call ata_identify
        jc no_drive
        mov $msg_sectors1, %esi
        call puts
        mov %ebp, %eax
        call putdec
        mov $msg_sectors2, %esi
        call puts

        xor %ebx, %ebx                  # ebx = lba
write_loop:
        cmp %ebp, %ebx
        jae write_done
        xor %esi, %esi                  # pass 0
        call make_pattern
        mov $0x30, %al
        call issue
        call wait_drq
        jc io_error
        mov $BUF, %esi
        mov $256, %ecx
        mov $ATA, %dx
        rep outsw
        call wait_ready
        jc io_error
        inc %ebx
        jmp write_loop
write_done:
        mov $ATA_STATUS, %dx
        mov $0xe7, %al                  # FLUSH CACHE
        outb %al, %dx
        call wait_ready
        jc io_error
        mov $msg_written, %esi
        call puts

        xor %ebx, %ebx
read_loop:
        cmp %ebp, %ebx
        jae all_ok
        mov $0x20, %al
        call issue
        call wait_drq
        jc io_error
        mov $BUF + 512, %edi
        mov $256, %ecx
        mov $ATA, %dx
        rep insw
        xor %esi, %esi                  # pass 0
        call make_pattern
        mov $BUF, %esi
        mov $BUF + 512, %edi
        mov $128, %ecx
        repe cmpsl
        jne bad_sector
        inc %ebx
        jmp read_loop

all_ok:
        mov $msg_ok, %esi
        call puts
        jmp halt
bad_sector:
        mov $msg_bad, %esi
        call puts
        mov %ebx, %eax
        call putdec
        mov $'\n', %al
        call putc
        jmp halt
io_error:
        mov $msg_ioerr, %esi
        call puts
        mov %ebx, %eax
        call putdec
        mov $'\n', %al
        call putc
        jmp halt
no_drive:
        mov $msg_nodrive, %esi
        call puts
halt:
        cli
        hlt
        jmp halt

msg_start:    .asciz "disk: start\n"
msg_sectors1: .asciz "disk: "
msg_sectors2: .asciz " sectors\n"
msg_written:  .asciz "disk: written\n"
msg_ok:       .asciz "disk: OK\n"
msg_bad:      .asciz "disk: bad sector "
msg_ioerr:    .asciz "disk: I/O error at sector "
msg_nodrive:  .asciz "disk: no drive\n"
