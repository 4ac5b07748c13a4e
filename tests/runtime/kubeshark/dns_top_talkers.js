// DNS Top Talkers
// Counts DNS questions per client pod and reports the top 3 every 20 seconds.
var counts = {};

function onItemCaptured(data) {
  if (!data.protocol || data.protocol.name !== "dns" || !data.src) return;
  var who = data.src.name || data.src.ip;
  counts[who] = (counts[who] || 0) + 1;
}

function report() {
  var names = Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a]; });
  for (var i = 0; i < Math.min(3, names.length); i++) {
    console.log((i + 1) + ".", names[i], counts[names[i]]);
    prometheus.metric("dns_questions_" + i, "DNS questions of top talker", 2, counts[names[i]], { s_pod: names[i] });
  }
  counts = {};
}

jobs.schedule("dns-top-talkers", "*/20 * * * * *", report);
