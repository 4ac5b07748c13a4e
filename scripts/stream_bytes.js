// Stream Byte Counter

// Counts packets and captured bytes per L4 stream in onPacketCaptured and, every minute, prints
// the three busiest streams of that minute with the path of their PCAP (pcap.path).

var streams = {};
var packets = 0;
var bytes = 0;

function onPacketCaptured(info) {
  packets++;
  bytes += info.captureLength;
  if (!info.stream) return;
  var s = streams[info.stream];
  if (!s) {
    s = streams[info.stream] = { packets: 0, bytes: 0 };
  }
  s.packets++;
  s.bytes += info.captureLength;
}

function printBusiest() {
  var ids = Object.keys(streams).sort(function (a, b) { return streams[b].bytes - streams[a].bytes; });
  console.log(packets + " packets, " + bytes + " bytes in " + ids.length + " streams this minute");
  for (var i = 0; i < Math.min(3, ids.length); i++) {
    var s = streams[ids[i]];
    console.log("  " + pcap.path(ids[i]) + ": " + s.packets + " packets, " + s.bytes + " bytes");
  }
  streams = {};
  packets = 0;
  bytes = 0;
}

jobs.schedule("stream-bytes", "0 * * * * *", printBusiest);
