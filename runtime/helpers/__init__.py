"""What scripts call: console, files, jobs, env, pcap snapshots and the vendor integrations."""
