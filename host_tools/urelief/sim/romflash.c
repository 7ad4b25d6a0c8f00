/* The virtual chip's memory-mapped flash for ROMFS. Preloaded into the board's VM process when
 * its MicroPython image has ROMFS (MICROPY_VFS_ROM): the romfs partition of the flash file
 * (URELIEF_ROMFS_FILE at URELIEF_ROMFS_OFFSET, URELIEF_ROMFS_SIZE bytes) is mapped shared at
 * the fixed address URELIEF_ROMFS_ADDR, outside MicroPython's GC heap, as an ESP32 maps its
 * flash into the cache's address space. The shims reach it with uctypes.bytearray_at; what is
 * written there is in the flash file. On success URELIEF_ROMFS_MAPPED=1 is set. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

__attribute__((constructor)) static void romflash_init(void) {
    const char *path = getenv("URELIEF_ROMFS_FILE");
    const char *off = getenv("URELIEF_ROMFS_OFFSET");
    const char *size = getenv("URELIEF_ROMFS_SIZE");
    const char *addr = getenv("URELIEF_ROMFS_ADDR");
    if (path == NULL || off == NULL || size == NULL || addr == NULL) {
        return;
    }
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        perror("romflash: open");
        return;
    }
    void *want = (void *)strtoull(addr, NULL, 0);
    void *got = mmap(want, strtoull(size, NULL, 0), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED_NOREPLACE, fd, (off_t)strtoull(off, NULL, 0));
    close(fd);  /* the mapping keeps the file */
    if (got == MAP_FAILED || got != want) {
        perror("romflash: mmap");
        if (got != MAP_FAILED) {
            munmap(got, strtoull(size, NULL, 0));
        }
        return;
    }
    setenv("URELIEF_ROMFS_MAPPED", "1", 1);
}
