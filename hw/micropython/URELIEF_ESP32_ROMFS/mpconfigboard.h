// U-Relief: a plain ESP32 (ESP32-WROOM-32E, no PSRAM, ~110 KB of MicroPython heap) with a ROMFS
// partition, the only way the firmware fits it (bench/heap.py: ~103 KB on the chip's terms from
// ROMFS, ~160 KB as .mpy files). Copy this directory to ports/esp32/boards/ in a MicroPython
// >= 1.25 tree and `make BOARD=URELIEF_ESP32_ROMFS`.
#define MICROPY_HW_BOARD_NAME "U-Relief ESP32 ROMFS"
#define MICROPY_HW_MCU_NAME "ESP32"
#define MICROPY_VFS_ROM (1)
