// U-Relief: an ESP32 with quad SPIRAM (ESP32-WROVER-E) and a ROMFS partition, so the firmware's
// modules run in place from flash (`urelief provision --deploy romfs`). Copy this directory to
// ports/esp32/boards/ in a MicroPython >= 1.25 tree and `make BOARD=URELIEF_ESP32_SPIRAM_ROMFS`.
#define MICROPY_HW_BOARD_NAME "U-Relief ESP32 SPIRAM ROMFS"
#define MICROPY_HW_MCU_NAME "ESP32"
#define MICROPY_VFS_ROM (1)
