// KFL Watch

// Counts the items that match the KFL query in env WATCH_KFL (default: HTTP responses with a
// status of 400 or more) per client and server, and prints the top five pairs every minute.
// Try: kflpcap run --pcap demo.pcap --env WATCH_KFL='dns and response.code == "Non-Existent Domain"'

var WATCH_KFL = env.WATCH_KFL || "http and response.status >= 400";
var ACTIVE = kfl.validate(WATCH_KFL);
var pairs = {};

if (ACTIVE) {
  console.log("watching:", WATCH_KFL);
} else {
  console.error("WATCH_KFL is not a valid KFL query:", WATCH_KFL);
}

function onItemCaptured(data) {
  if (!ACTIVE || !kfl.match(WATCH_KFL, data)) return;
  var key = (data.src.name || data.src.ip) + " -> " + (data.dst.name || data.dst.ip) + ":" + data.dst.port;
  pairs[key] = (pairs[key] || 0) + 1;
}

function printTopPairs() {
  var keys = Object.keys(pairs).sort(function (a, b) { return pairs[b] - pairs[a]; });
  for (var i = 0; i < Math.min(5, keys.length); i++) {
    console.log((i + 1) + ".", keys[i], pairs[keys[i]], "matches");
  }
  pairs = {};
}

jobs.schedule("kfl-watch-top", "30 * * * * *", printTopPairs);
