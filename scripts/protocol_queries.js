// Protocol Queries

// One KFL query per protocol beyond HTTP/1.x and DNS: HTTP/2 answers of 500 or more, gRPC calls
// that failed (grpc-status other than 0), TLS handshakes for a server name in .internal and Redis
// error replies. Counts the items each query matches and their connections, and prints the counts
// so far every minute. To keep those connections as PCAP repositories, give the same queries to
// wrapper.kflPcapS3 (see kfl_pcap_s3.js).

var PROTOCOL_QUERIES = [
  "http2 and response.status >= 500",
  "grpc and response.grpc.status != 0",
  'tls and request.sni.endsWith(".internal")',
  "redis and response.error",
];
var matched = [];

for (var q = 0; q < PROTOCOL_QUERIES.length; q++) {
  matched.push({ items: 0, connections: {} });
}

function onItemCaptured(data) {
  for (var i = 0; i < PROTOCOL_QUERIES.length; i++) {
    if (kfl.match(PROTOCOL_QUERIES[i], data)) {
      matched[i].items++;
      matched[i].connections[data.src.ip + ":" + data.src.port + " > " + data.dst.ip + ":" + data.dst.port] = true;
    }
  }
}

function printMatches() {
  for (var i = 0; i < PROTOCOL_QUERIES.length; i++) {
    var connections = Object.keys(matched[i].connections).length;
    console.log(PROTOCOL_QUERIES[i] + ":", matched[i].items, "items on", connections, "connections");
  }
}

jobs.schedule("protocol-queries", "0 * * * * *", printMatches);
