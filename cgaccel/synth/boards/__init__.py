"""Pin constraint files of the boards (package data: ulx3s.lpf, icebreaker.pcf)."""
