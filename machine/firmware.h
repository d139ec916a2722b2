/* Built-in guest firmware: flat 32-bit multiboot images assembled from
 * the machine/firmware sources at build time and embedded in hop. */
#ifndef HOP_MACHINE_FIRMWARE_H
#define HOP_MACHINE_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

struct firmware_image {
    const char *name;
    const char *summary;
    const uint8_t *data;
    size_t size;
};

/* The image called name, or NULL. */
const struct firmware_image *firmware_find(const char *name);
/* All images; ends with name NULL. */
const struct firmware_image *firmware_list(void);
/* "memtest, counter, disk, echo" for messages. */
const char *firmware_names(void);

#endif
