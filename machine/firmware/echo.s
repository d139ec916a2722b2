# echo: prints on COM1 the keys typed on the PS/2 keyboard (scancode set 1
# as the i8042 delivers it, shift honoured; keys without a character as
# <xx>) and each mouse packet as "[mouse b dx dy]" in hex.
        .code32
        .set KBD_DATA, 0x60
        .set KBD_STATUS, 0x64

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
        # Enable the mouse port and mouse reporting; drop the ACK.
        mov $0xa8, %al
        outb %al, $KBD_STATUS
        mov $0xd4, %al
        outb %al, $KBD_STATUS
        mov $0xf4, %al
        outb %al, $KBD_DATA
        call read_byte
        mov $msg_ready, %esi
        call puts
        xor %ebx, %ebx                  # bl: shift state, bh: extended
        xor %edi, %edi                  # mouse bytes collected
main_loop:
        inb $KBD_STATUS, %al
        test $1, %al
        jz main_loop
        test $0x20, %al
        jnz mouse_byte
        inb $KBD_DATA, %al
        cmp $0xe0, %al
        jne 1f
        mov $1, %bh
        jmp main_loop
1:      mov %bh, %ah
        xor %bh, %bh
        cmp $0x2a, %al                  # shift down
        je shift_down
        cmp $0x36, %al
        je shift_down
        cmp $0xaa, %al                  # shift up
        je shift_up
        cmp $0xb6, %al
        je shift_up
        test $0x80, %al
        jnz main_loop                   # other releases
        test %ah, %ah
        jnz unknown                     # extended keys have no character
        movzbl %al, %ecx
        cmp $0x3a, %ecx
        jae unknown
        test %bl, %bl
        jz 2f
        mov shifted(%ecx), %dl
        jmp 3f
2:      mov plain(%ecx), %dl
3:      test %dl, %dl
        jz unknown
        mov %dl, %al
        call putc
        jmp main_loop
unknown:
        push %eax
        mov $'<', %al
        call putc
        pop %eax
        call puthex8
        mov $'>', %al
        call putc
        jmp main_loop
shift_down:
        mov $1, %bl
        jmp main_loop
shift_up:
        xor %bl, %bl
        jmp main_loop

mouse_byte:
        inb $KBD_DATA, %al
        mov %al, packet(%edi)
        inc %edi
        cmp $3, %edi
        jb main_loop
        xor %edi, %edi
        mov $msg_mouse, %esi
        call puts
        mov packet, %al
        call puthex8
        mov $' ', %al
        call putc
        mov packet+1, %al
        call puthex8
        mov $' ', %al
        call putc
        mov packet+2, %al
        call puthex8
        mov $']', %al
        call putc
        jmp main_loop

# Wait for a byte from the controller and return it in al.
read_byte:
        inb $KBD_STATUS, %al
        test $1, %al
        jz read_byte
        inb $KBD_DATA, %al
        ret

msg_ready: .asciz "echo: ready\n"
msg_mouse: .asciz "[mouse "
packet:    .byte 0, 0, 0, 0

# Scancode set 1 make codes 0x00-0x39 to characters (0: none).
plain:
        .byte 0, 0, '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '-', '=', 0, '\t'
        .byte 'q', 'w', 'e', 'r', 't', 'y', 'u', 'i', 'o', 'p', '[', ']', '\n', 0, 'a', 's'
        .byte 'd', 'f', 'g', 'h', 'j', 'k', 'l', ';', '\'', '`', 0, '\\', 'z', 'x', 'c', 'v'
        .byte 'b', 'n', 'm', ',', '.', '/', 0, '*', 0, ' '
shifted:
        .byte 0, 0, '!', '@', '#', '$', '%', '^', '&', '*', '(', ')', '_', '+', 0, '\t'
        .byte 'Q', 'W', 'E', 'R', 'T', 'Y', 'U', 'I', 'O', 'P', '{', '}', '\n', 0, 'A', 'S'
        .byte 'D', 'F', 'G', 'H', 'J', 'K', 'L', ':', '"', '~', 0, '|', 'Z', 'X', 'C', 'V'
        .byte 'B', 'N', 'M', '<', '>', '?', 0, '*', 0, ' '
