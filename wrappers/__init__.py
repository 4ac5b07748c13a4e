"""Automation on top of helpers: kflPcapS3, repositories, PCAP writing, object stores and the spool."""
