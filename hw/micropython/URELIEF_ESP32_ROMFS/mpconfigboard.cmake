# ESP32_GENERIC (no SPIRAM) plus the port's 4 MiB partition table with a 128 KiB romfs
# partition at 0x1E0000 (ports/esp32/partitions-4MiB-romfs.csv).
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
