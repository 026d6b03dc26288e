"""The sorting-line PLC over Modbus: register map, client adapter, pymodbus-server simulator."""
