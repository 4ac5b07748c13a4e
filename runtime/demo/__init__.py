"""The bundled demo capture (`demo.pcap`, made by `python3 -m runtime.demo.make_demo`) and the live
test network that makes it (`runtime.demo.livenet`)."""

from pathlib import Path

DEMO_PCAP = Path(__file__).with_name("demo.pcap")
DEMO_JSON = Path(__file__).with_name("demo.json")

__all__ = ["DEMO_JSON", "DEMO_PCAP"]
