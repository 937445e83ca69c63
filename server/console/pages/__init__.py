"""The console's pages, one module each: fleet, devices, fields, audit, alerts."""
