"""Traffic in: sources, L2-L4 decoding, L4 streams with TCP reassembly, the stream store, dissectors."""
